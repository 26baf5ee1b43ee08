/** Exit codes of the master process (sysexits.h where one fits). */
export const EXIT_OK = 0;
/** A shutdown had to kill workers at gracefulTimeout. */
export const EXIT_KILLED = 1;
/** Command-line usage error (EX_USAGE). */
export const EXIT_USAGE = 64;
/** `cluster2 start APP`: the app module does not exist (EX_NOINPUT). */
export const EXIT_NOINPUT = 66;
/** A host does not resolve, or the address to bind is not on this machine (EADDRNOTAVAIL) (EX_NOHOST). */
export const EXIT_NOHOST = 68;
/** A port is busy (EX_UNAVAILABLE); the `portBusyExitCode` option changes it. */
export const EXIT_PORT_BUSY = 69;
/** Workers keep dying before they listen (EX_SOFTWARE). */
export const EXIT_CRASH_LOOP = 70;
/**
 * The configuration is wrong: the package.json `cluster2` key (unreadable, or an invalid option), or options
 * asking for what this installation cannot do, e.g. sticky without the addon (EX_CONFIG).
 */
export const EXIT_CONFIG = 78;
/** The pids directory, a pid file or the control socket cannot be created or written (EX_CANTCREAT). */
export const EXIT_CANTCREAT = 73;
/** No permission to bind a port (EACCES: a port below 1024 without CAP_NET_BIND_SERVICE) (EX_NOPERM). */
export const EXIT_NOPERM = 77;

export const EXIT_CODES = Object.freeze({
  ok: EXIT_OK,
  killed: EXIT_KILLED,
  usage: EXIT_USAGE,
  noInput: EXIT_NOINPUT,
  noHost: EXIT_NOHOST,
  portBusy: EXIT_PORT_BUSY,
  crashLoop: EXIT_CRASH_LOOP,
  config: EXIT_CONFIG,
  cantCreat: EXIT_CANTCREAT,
  noPerm: EXIT_NOPERM,
});
