import { OPTION_NAMES, SPECS, type Resolved } from '../shared/options';

/**
 * The command line of `cluster2`: commands, and one flag per option of the
 * API, derived from the options table (lib/shared/options.ts SPECS) so a new option
 * gets its flag without a change here. Values are checked by the option's own
 * check, so a bad value is refused before anything starts.
 */

export const COMMANDS = ['start', 'status', 'reload', 'shutdown', 'stop', 'scale', 'ecv', 'upgrade'] as const;
export type Command = (typeof COMMANDS)[number];

/** A usage error: the command prints it with the usage and exits 64 (EX_USAGE). */
export class UsageError extends Error {
  override name = 'UsageError';
}

export interface OptionFlag {
  /** Without the leading `--`. */
  flag: string;
  option: keyof Resolved;
  /** For sub-options: the key inside the option's object (`ecv-path` -> ecv.path). */
  key?: string;
  /** The value when the flag is given alone (`--cluster`), or undefined: it needs a value. */
  bare?: true;
  /**
   * Alone it means true, and it also takes a value (`--request-histogram`, or
   * `--request-histogram 0.01,0.1,1`): the next argument is its value when the option accepts it.
   */
  optionalValue?: true;
  /** `--no-<flag>` sets the option false. */
  negatable: boolean;
  /** A comma-separated list; repeating the flag adds to it. */
  list?: boolean;
  /** The value's name in the help text. */
  arg: string;
  help: string;
}

/** Where the flag is not the option name in kebab-case (`--no-workers` would read as a negation). */
const RENAMED: Partial<Record<keyof Resolved, string>> = { noWorkers: 'workers' };

/** Help text of each option: [value name, description] (test/cli.test.ts checks that none is missing). */
export const HELP: Partial<Record<keyof Resolved, [string, string]>> = {
  cluster: ['', 'run workers (default); --no-cluster: one process'],
  port: ['N', 'app port (default $PORT, else 3000; 0 picks a free port)'],
  host: ['HOST', 'address the app binds (default: all interfaces)'],
  noWorkers: ['N', 'number of workers (default $WEB_CONCURRENCY, else the CPUs, within the cgroup quota)'],
  pids: ['DIR', 'directory of pid files and control sockets (default ./pids)'],
  monPort: ['N|false', 'monitor port (default 3001); --no-mon-port disables the monitor'],
  monHost: ['HOST', 'monitor address (default 127.0.0.1)'],
  ecv: ['', 'health endpoint on (default); --no-ecv turns it off'],
  timeout: ['MS', 'idle socket timeout (default 30000; 0: none)'],
  connThreshold: ['N', 'recycle a worker after N connections (default: off)'],
  strategy: ['S', 'auto (default), reuseport, round-robin or shared'],
  gracefulTimeout: ['MS', 'how long a drain or shutdown may take before workers are killed (default 30000)'],
  drainDelay: ['MS', 'wait between ECV turning DISABLED and closing listeners at shutdown (default 0)'],
  maxRequests: ['N', 'recycle a worker after N requests (default: off)'],
  maxRequestsJitter: ['N', 'plus a random 0..N per worker'],
  maxMemory: ['SIZE', 'recycle a worker whose RSS exceeds SIZE (bytes, or like 512M)'],
  maxAge: ['MS', 'recycle a worker older than MS'],
  heartbeatTimeout: ['MS', 'replace a worker whose event loop does not answer for MS (default 30000; 0: off)'],
  waitReady: ['', "a new worker counts as up when it sends process.send('ready'), not when it listens"],
  spare: ['', 'keep a booted spare worker for replacements (default); --no-spare: fork each one'],
  sticky: ['ip', 'every connection from one client address reaches the same worker (reuseport + native addon, Linux)'],
  reloadConcurrency: ['N', 'workers a reload replaces at once (default: 1 up to 4 workers, then 25%)'],
  listenTimeout: [
    'MS',
    'how long a worker may take to listen (a replacement: or be ready) before it is given up (default 30000)',
  ],
  logs: ['DIR', 'logs directory the monitor shows under /logs (default: none, no /logs)'],
  portBusyExitCode: ['CODE', 'exit code when a port is busy (default 69)'],
  metrics: ['[HOST:]PORT', 'serve GET /metrics alone on this port (Prometheus; off by default)'],
  requestHistogram: [
    '[BUCKETS]',
    "a request duration histogram in /metrics; alone: prom-client's buckets (0.005 to 10 s); " +
      'or the bounds in seconds: 0.01,0.1,1 or [0.01,0.1,1]',
  ],
  pidFile: ['FILE', "also write the master's pid to FILE, a fixed name (systemd PIDFile=, monit)"],
};

/** The ECV sub-options settable from a command line (a validator is a function: API or app module only). */
const ECV_FLAGS: Omit<OptionFlag, 'option' | 'negatable'>[] = [
  { flag: 'ecv-path', key: 'path', arg: 'PATH', help: 'health endpoint path (default /ecv)' },
  {
    flag: 'ecv-monitor',
    key: 'monitor',
    arg: 'PATH',
    help: 'app path that must answer < 300 before ECV says AVAILABLE',
  },
  { flag: 'ecv-control', key: 'control', bare: true, arg: '', help: 'allow POST <path>/disable and /enable' },
  {
    flag: 'ecv-allow',
    key: 'allow',
    list: true,
    arg: 'IP,...',
    help: 'addresses allowed to use the control routes (besides loopback)',
  },
];

const kebab = (s: string) => s.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);

function accepts(name: keyof Resolved, v: unknown): boolean {
  try {
    SPECS[name].check(name, v);
    return true;
  } catch {
    return false;
  }
}

/** One flag per option (two or more for an object option). */
export const OPTION_FLAGS: readonly OptionFlag[] = OPTION_NAMES.flatMap((option): OptionFlag[] => {
  const [arg, help] = HELP[option] ?? ['VALUE', `option ${option}`];
  const boolean = typeof SPECS[option].def() === 'boolean';
  const optionalValue = !boolean && option !== 'ecv' && accepts(option, true);
  const own: OptionFlag = {
    flag: RENAMED[option] ?? kebab(option),
    option,
    bare: boolean || option === 'ecv' || optionalValue ? true : undefined,
    optionalValue: optionalValue ? true : undefined,
    negatable: accepts(option, false),
    arg,
    help,
  };
  if (option !== 'ecv') return [own];
  return [own, ...ECV_FLAGS.map((f) => ({ ...f, option, negatable: f.bare === true }))];
});

/** Flags besides the options: [name, value name, help, commands]. */
const GENERAL: [string, string, string, readonly Command[]][] = [
  ['log-format', 'human|json', 'lifecycle log lines on stderr (default human)', ['start']],
  ['json', '', 'print the result as JSON', ['status', 'reload', 'shutdown', 'stop', 'scale', 'ecv', 'upgrade']],
  ['node', 'PATH', 'upgrade: the node binary of the new master (default: node on PATH)', ['upgrade']],
  // Not for start, where --timeout is the idle socket timeout option.
  [
    'timeout',
    'S',
    'seconds to wait for the master (default 10 for status, 120 otherwise)',
    ['status', 'reload', 'shutdown', 'stop', 'scale', 'ecv', 'upgrade'],
  ],
];

export interface Parsed {
  command: Command | 'help' | 'version';
  app?: string;
  /** Options given as flags, by their API names (ecv as an object). */
  options: Record<string, unknown>;
  json: boolean;
  logFormat: 'human' | 'json';
  /** Milliseconds; undefined: the command's default. */
  timeout?: number;
  scale?: { n: number } | { delta: number };
  /** `ecv enable` / `ecv disable`. */
  ecv?: boolean;
  /** upgrade --node PATH. */
  node?: string;
  /** After `--`: left for the app (process.argv). */
  appArgs: string[];
}

const SCALE = /^[+-]?\d+$/;
/** The noWorkers range (options.ts). */
const MAX_WORKERS = 1024;

function valueCandidates(raw: string): unknown[] {
  if (raw === 'true') return [true, raw];
  if (raw === 'false') return [false, raw];
  if (/^-?\d+(\.\d+)?$/.test(raw)) return [Number(raw), raw];
  return [raw];
}

/** The first reading of `raw` (boolean, number, string) that the option's check accepts. */
function optionValue(f: OptionFlag, raw: string): unknown {
  let first: Error | undefined;
  for (const v of valueCandidates(raw)) {
    try {
      SPECS[f.option].check(f.option, v);
      return v;
    } catch (e) {
      first ??= e as Error;
    }
  }
  throw new UsageError(`${first!.message} (flag --${f.flag})`);
}

/** Does a flag that means true alone take `next` as its value? true/false always; another value when the option accepts it. */
function takesNext(f: OptionFlag, next: string | undefined): boolean {
  if (next === 'true' || next === 'false') return true;
  return f.optionalValue === true && next !== undefined && !next.startsWith('-') && accepts(f.option, next);
}

/** Parse `cluster2 COMMAND ...` (process.argv.slice(2)); throws UsageError. */
export function parseArgs(argv: readonly string[]): Parsed {
  const out: Parsed = { command: 'help', options: {}, json: false, logFormat: 'human', appArgs: [] };
  const end = argv.indexOf('--');
  const own = end < 0 ? argv : argv.slice(0, end);
  if (own.some((a) => a === '-h' || a === '--help') || own[0] === 'help') return out;
  if (own.some((a) => a === '-v' || a === '--version')) return { ...out, command: 'version' };
  const command = own[0];
  if (command === undefined) throw new UsageError('no command given');
  if (!(COMMANDS as readonly string[]).includes(command)) {
    throw new UsageError(
      command.startsWith('-')
        ? `the command comes first, before ${command}`
        : `unknown command ${JSON.stringify(command)}`,
    );
  }
  out.command = command as Command;
  if (end >= 0) out.appArgs = argv.slice(end + 1);
  const positional: string[] = [];
  let ecv: Record<string, unknown> | false | undefined;
  for (let i = 1; i < own.length; i++) {
    const a = own[i];
    if (!a.startsWith('-') || SCALE.test(a)) {
      positional.push(a);
      continue;
    }
    if (!a.startsWith('--')) throw new UsageError(`unknown flag ${a}`);
    const eq = a.indexOf('=');
    let name = a.slice(2, eq < 0 ? undefined : eq);
    const inline = eq < 0 ? undefined : a.slice(eq + 1);
    const next = (): string => {
      if (inline !== undefined) return inline;
      const v = own[i + 1];
      if (v === undefined || (v.startsWith('--') && v.length > 2)) throw new UsageError(`--${name} needs a value`);
      i++;
      return v;
    };
    // General flags.
    const general = GENERAL.find(([g, , , cmds]) => g === name && cmds.includes(out.command as Command));
    if (general) {
      if (name === 'json') out.json = true;
      else if (name === 'node') out.node = next();
      else if (name === 'log-format') {
        const v = next();
        if (v !== 'human' && v !== 'json')
          throw new UsageError(`--log-format must be human or json, not ${JSON.stringify(v)}`);
        out.logFormat = v;
      } else {
        const v = next();
        const s = Number(v);
        if (!/^\d+(\.\d+)?$/.test(v) || s <= 0)
          throw new UsageError(`--timeout must be a number of seconds > 0, not ${JSON.stringify(v)}`);
        out.timeout = Math.round(s * 1000);
      }
      continue;
    }
    // Option flags.
    let negated = false;
    let f = OPTION_FLAGS.find((x) => x.flag === name);
    if (!f && name.startsWith('no-')) {
      f = OPTION_FLAGS.find((x) => x.flag === name.slice(3) && x.negatable);
      negated = f !== undefined;
    }
    if (!f) throw new UsageError(`unknown flag --${name}`);
    name = f.flag;
    if (command !== 'start' && f.option !== 'pids') throw new UsageError(`--${name} does not apply to ${command}`);
    let raw: string | undefined;
    if (negated) {
      if (inline !== undefined) throw new UsageError(`--no-${name} takes no value`);
      raw = 'false';
    } else if (f.bare && inline === undefined && !takesNext(f, own[i + 1])) {
      raw = 'true';
    } else raw = next();
    if (f.option === 'ecv') {
      if (f.key === undefined) {
        if (raw !== 'true' && raw !== 'false')
          throw new UsageError(`--ecv takes no value (use --no-ecv to turn it off, --ecv-path PATH to move it)`);
        if (raw === 'false' && ecv && Object.keys(ecv).length)
          throw new UsageError('--no-ecv contradicts the --ecv-* flags');
        ecv = raw === 'true' ? ecv || {} : false;
        continue;
      }
      if (ecv === false) throw new UsageError(`--${name} contradicts --no-ecv`);
      ecv ??= {};
      if (f.list) ecv[f.key] = [...((ecv[f.key] as string[]) ?? []), ...raw.split(',').filter(Boolean)];
      else if (f.bare) ecv[f.key] = raw === 'true' ? true : raw === 'false' ? false : raw;
      else ecv[f.key] = raw;
      continue;
    }
    out.options[f.option] = optionValue(f, raw);
  }
  if (ecv !== undefined) {
    try {
      SPECS.ecv.check('ecv', ecv);
    } catch (e) {
      throw new UsageError((e as Error).message);
    }
    out.options.ecv = ecv;
  }
  if (out.command === 'start') {
    if (positional.length !== 1)
      throw new UsageError(
        positional.length ? `start takes one APP, got ${positional.join(' ')}` : 'start needs an APP (a module path)',
      );
    out.app = positional[0];
  } else if (out.command === 'scale') {
    if (positional.length !== 1 || !SCALE.test(positional[0])) throw new UsageError('scale needs N, +N or -N');
    const p = positional[0];
    out.scale = /^[+-]/.test(p) ? { delta: Number(p) } : { n: Number(p) };
    const n = Number(p);
    if (!/^[+-]/.test(p) && (n < 1 || n > MAX_WORKERS))
      throw new UsageError(`scale ${p}: the number of workers must be from 1 to ${MAX_WORKERS}`);
    if (/^[+-]/.test(p) && Math.abs(n) >= MAX_WORKERS)
      throw new UsageError(`scale ${p}: the number of workers must stay from 1 to ${MAX_WORKERS}`);
  } else if (out.command === 'ecv') {
    if (positional.length !== 1 || (positional[0] !== 'enable' && positional[0] !== 'disable'))
      throw new UsageError('ecv needs enable or disable');
    out.ecv = positional[0] === 'enable';
  } else if (positional.length) {
    throw new UsageError(`${out.command} takes no argument, got ${positional.join(' ')}`);
  }
  return out;
}

const SYNOPSIS = [
  'Usage:',
  '  cluster2 start APP [options] [-- app arguments]',
  '                              run APP (a module exporting a server, a request handler (req, res),',
  '                              or a function, possibly async, returning one) with workers, in the',
  '                              foreground; options also come from a "cluster2" key in the',
  '                              package.json nearest to APP (flags win)',
  '  cluster2 status [--pids DIR] [--json]',
  '  cluster2 reload [--pids DIR] [--timeout S]      replace every worker, replacement first',
  '  cluster2 scale N|+N|-N [--pids DIR] [--timeout S]',
  '  cluster2 shutdown [--pids DIR] [--timeout S]    graceful: in-flight requests finish',
  '  cluster2 stop [--pids DIR] [--timeout S]        immediate',
  '  cluster2 ecv enable|disable [--pids DIR]        take the host in or out of rotation (ECV 200 / 400)',
  '  cluster2 upgrade [--pids DIR] [--node PATH] [--timeout S]',
  '                              replace the master itself: a new master inherits the listening',
  '                              sockets and starts its workers, then the old one drains and exits',
  '  cluster2 --help | --version',
];

/** The synopsis, printed with a usage error. */
export function shortUsage(): string {
  return [...SYNOPSIS, '', 'cluster2 --help lists every option.', ''].join('\n');
}

export function usage(): string {
  const pad = (s: string) => (s.length >= 30 ? `${s}\n${' '.repeat(32)}` : s.padEnd(30));
  const line = (flag: string, arg: string, help: string) => `  ${pad(`--${flag}${arg ? ` ${arg}` : ''}`)}  ${help}`;
  const general = (cmd: Command) =>
    GENERAL.filter(([, , , cmds]) => cmds.includes(cmd)).map(([g, arg, help]) => line(g, arg, help));
  return [
    ...SYNOPSIS,
    '',
    'Options of start (every option of the API; a "cluster2" key in package.json takes the API names):',
    ...OPTION_FLAGS.map((f) => line(f.flag, f.arg, f.help)),
    ...general('start'),
    '',
    'Options of status, reload, scale, shutdown, stop and ecv:',
    line('pids', 'DIR', 'where the masters are found (default: the package.json "cluster2" pids, else ./pids)'),
    ...general('status'),
    '',
    'Exit codes: 0 done; 1 the action failed or timed out; 3 no running master;',
    '64 usage error; 66 (start) the app module does not exist;',
    '68 a host does not resolve, or the address is not on this machine; 69 a port is busy;',
    '70 workers keep dying before they listen (or the app never listens);',
    '73 the pids directory, a pid file or the control socket cannot be used;',
    '77 no permission to bind a port (a port below 1024 without the capability);',
    '78 bad configuration (package.json options, socket activation meant for another process).',
    '',
  ].join('\n');
}
