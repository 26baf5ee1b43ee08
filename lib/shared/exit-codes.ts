/**
 * Every exit code of every cluster2 process, each meaning one thing, and the one
 * function every process exits through (exitProcess). The master's codes follow
 * sysexits.h where one fits (docs: README "Exit codes"); the command-line
 * client's and the worker's are below them.
 */

/** The one way any cluster2 process (master, single, worker, the CLI) exits: nothing else calls process.exit. */
export function exitProcess(code: number): never {
  process.exit(code);
}

// ---- the master (and single mode) ---------------------------------------------------------

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
/**
 * A start that failed for a reason none of the codes above names: an error from the operating system
 * (a fork, a socket, too many open files) or an unexpected one; the line on stderr says which (EX_OSERR).
 */
export const EXIT_OSERR = 71;

// ---- the command-line client (cluster2 stop, shutdown, reload, upgrade, scale, ecv, status) --

/** The master refused the action, it failed or timed out (a failed upgrade, a reload that failed). */
export const EXIT_COMMAND_FAILED = 1;
/** No running master (the LSB init-script code for "not running"). */
export const EXIT_NOT_RUNNING = 3;

// ---- a worker (read by its master, never shown to a user) ----------------------------------

/** It drained: everything in flight was answered, its onDrain handlers settled. */
export const WORKER_DRAINED = 0;
/** It failed to start, or its drain was cut (gracefulTimeout) with work in flight. */
export const WORKER_FAILED = 1;

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
  osErr: EXIT_OSERR,
});
