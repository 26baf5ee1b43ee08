import * as net from 'node:net';
import * as path from 'node:path';
import { defaultWorkers } from './cpu-quota';
import { DEFAULT_BUCKETS } from './durations';
import { EXIT_PORT_BUSY } from './exit-codes';
import { safeText } from './safe-text';

export type Strategy = 'auto' | 'reuseport' | 'round-robin' | 'shared';
export const STRATEGIES: readonly Strategy[] = ['auto', 'reuseport', 'round-robin', 'shared'];

export interface EcvOptions {
  /** Path of the health endpoint. */
  path?: string;
  /** A path on the app that must answer < 300 before ECV says AVAILABLE. */
  monitor?: string;
  /** false (or a promise of false) makes ECV unhealthy. */
  validator?: () => boolean | Promise<boolean>;
  /** Allow POST <path>/disable and POST <path>/enable. */
  control?: boolean;
  /** Addresses allowed to use the control routes (default: loopback). */
  allow?: string[];
}

export interface ClusterOptions {
  cluster?: boolean;
  port?: number | string;
  host?: string;
  noWorkers?: number | string;
  pids?: string;
  monPort?: number | string | false;
  monHost?: string;
  ecv?: EcvOptions | false;
  timeout?: number | string;
  connThreshold?: number | string;
  strategy?: Strategy;
  gracefulTimeout?: number | string;
  drainDelay?: number | string;
  maxRequests?: number | string;
  maxRequestsJitter?: number | string;
  maxMemory?: number | string;
  maxAge?: number | string;
  heartbeatTimeout?: number | string;
  /**
   * A replacement counts as up only after it calls `cluster.ready()` (or `process.send('ready')`), not
   * when it listens.
   */
  waitReady?: boolean;
  /** How long a replacement (recycle, reload) may take to listen (or be ready) before it is given up. */
  listenTimeout?: number | string;
  /**
   * Keep one spare worker process booted (Node started, cluster2 loaded, none
   * of the app's code run) for the next slot that needs a worker: recycles,
   * reloads, respawns and new slots skip Node's start. Default true.
   */
  spare?: boolean;
  /**
   * 'ip': every connection from one client address reaches the same worker
   * (a BPF program on the reuseport group; needs strategy reuseport and the
   * native addon on Linux). false or absent: off.
   */
  sticky?: 'ip' | false;
  /** Workers replaced at once by a reload. Default: 1 up to 4 workers, then 25% of them. */
  reloadConcurrency?: number;
  logs?: string;
  portBusyExitCode?: number | string;
  /** A pid file with a fixed name holding the master's pid (systemd PIDFile=, monit); none by default. */
  pidFile?: string;
  /** Serve GET /metrics alone on its own port (all interfaces unless host is given); off by default. */
  metrics?: MetricsOptions | number | string | false;
  /**
   * A request duration histogram in /metrics (and a p99 chart): true for prom-client's buckets, or the
   * buckets in seconds. Off by default.
   */
  requestHistogram?: boolean | number[];
}

export interface MetricsOptions {
  port: number;
  /** Default: every interface. */
  host?: string;
}

export interface ResolvedEcv {
  path: string;
  monitor?: string;
  validator?: () => boolean | Promise<boolean>;
  control: boolean;
  allow: string[];
}

export interface Resolved {
  cluster: boolean;
  port: number;
  host: string | undefined;
  noWorkers: number;
  pids: string;
  monPort: number | false;
  monHost: string;
  ecv: ResolvedEcv | false;
  timeout: number;
  connThreshold: number;
  strategy: Strategy;
  gracefulTimeout: number;
  drainDelay: number;
  maxRequests: number;
  maxRequestsJitter: number;
  maxMemory: number;
  maxAge: number;
  heartbeatTimeout: number;
  waitReady: boolean;
  listenTimeout: number;
  spare: boolean;
  sticky: 'ip' | undefined;
  /** 0: the default, which follows the number of workers (reloadConcurrencyFor). */
  reloadConcurrency: number;
  /** Undefined: the monitor serves no /logs (other local users could read the files through it). */
  logs: string | undefined;
  portBusyExitCode: number;
  pidFile: string | undefined;
  /** Off: undefined. */
  metrics: { port: number; host: string | undefined } | undefined;
  requestHistogram: number[] | undefined;
}

const LOOPBACK = ['127.0.0.1', '::1', '::ffff:127.0.0.1'];

/** '::ffff:10.0.0.1' -> '10.0.0.1'. */
const plainAddress = (a: string) => (a.startsWith('::ffff:') && a.includes('.') ? a.slice(7) : a);

function show(v: unknown): string {
  if (typeof v === 'string') return JSON.stringify(v);
  if (typeof v === 'function') return 'a function';
  if (v === null || typeof v !== 'object') return String(v);
  try {
    return JSON.stringify(v);
  } catch {
    return 'an object';
  }
}

function fail(name: string, value: unknown, allowed: string, range = false): never {
  const E = range ? RangeError : TypeError;
  throw new E(`cluster2: option "${name}" is ${show(value)}; it must be ${allowed}`);
}

/**
 * A numeric option may come as a plain decimal string (`port: process.env.PORT`),
 * as the original and `server.listen('3000')` took it: digits only, no sign,
 * space, exponent or prefix. Any other string is left as is, for the check to refuse.
 */
export function decimal(v: unknown): unknown {
  return typeof v === 'string' && /^[0-9]+$/.test(v) ? Number(v) : v;
}

function integer(name: string, given: unknown, min: number, max: number, what: string): number {
  const v = decimal(given);
  if (typeof v !== 'number' || !Number.isInteger(v)) fail(name, given, what);
  if (v < min || v > max) fail(name, given, what, true);
  return v;
}

const ms = (name: string, v: unknown) => integer(name, v, 0, 2 ** 31 - 1, 'a whole number of milliseconds >= 0');
const PORT = 'a port number from 0 to 65535 (0 picks a free port)';
const port = (name: string, v: unknown) => integer(name, v, 0, 65535, PORT);
const str = (name: string, v: unknown) => {
  if (typeof v !== 'string' || v === '') fail(name, v, 'a non-empty string');
  return v;
};
const bool = (name: string, v: unknown) => {
  if (typeof v !== 'boolean') fail(name, v, 'true or false');
  return v;
};
/** 0, false or undefined turn a recycle trigger off. */
const optionalCount = (name: string, v: unknown, unit = 'a whole number > 0, or 0 / false to turn it off') =>
  v === false || decimal(v) === 0 ? 0 : integer(name, v, 1, Number.MAX_SAFE_INTEGER, unit);

/**
 * Floors: values below them cannot be meant. A 1 ms heartbeat replaces
 * healthy workers over and over; a 1K maxMemory recycles every worker at each
 * heartbeat; no worker can listen within a listenTimeout shorter than Node's
 * own start; an idle timeout of a few ms cuts every request that waits for a
 * database; a maxAge under a second recycles a worker before it has served.
 * gracefulTimeout, drainDelay, maxRequests and connThreshold have none: 0 or a
 * short grace is a harsh choice but a real one, and a recycle (replacement
 * first) loses nothing however often it comes, so small counts cost throughput
 * only, in plain sight (`recycled` events).
 */
export const FLOORS = {
  timeout: 100,
  heartbeatTimeout: 100,
  listenTimeout: 100,
  maxAge: 1000,
  maxMemory: 16 * 1024 ** 2,
} as const;

/** `v` (already checked as a number), refused with a RangeError below the option's floor; 0 (off) passes when `off`. */
function floored(name: keyof typeof FLOORS, given: unknown, v: number, off: boolean, shown = `${FLOORS[name]} ms`) {
  if (v < FLOORS[name] && !(off && v === 0))
    fail(name, given, `at least ${shown}${off ? ', or 0 / false to turn it off' : ''}`, true);
  return v;
}

const SIZE_UNITS: Record<string, number> = { '': 1, B: 1, K: 1024, M: 1024 ** 2, G: 1024 ** 3 };

/** '512M', '1.5G', '300MB', 1048576 -> bytes. */
export function parseBytes(name: string, v: unknown): number {
  if (v === false || decimal(v) === 0) return 0;
  if (typeof v === 'number')
    return integer(name, v, 1, Number.MAX_SAFE_INTEGER, 'a size in bytes, or a string like "512M"');
  const m = typeof v === 'string' ? /^\s*(\d+(?:\.\d+)?)\s*([KMG]?)(?:i?B)?\s*$/i.exec(v) : null;
  if (!m) fail(name, v, 'a size in bytes, or a string like "512M" (units K, M, G)');
  const bytes = Math.round(Number(m[1]) * SIZE_UNITS[m[2].toUpperCase()]);
  if (bytes <= 0) fail(name, v, 'a size greater than 0', true);
  return bytes;
}

function ecvOptions(v: unknown): ResolvedEcv | false {
  if (v === false) return false;
  if (v === undefined || v === true) v = {};
  if (typeof v !== 'object' || v === null || Array.isArray(v))
    fail('ecv', v, 'an object like { path: "/ecv", control: false }, or false');
  const o = v as Record<string, unknown>;
  const known = ['path', 'monitor', 'validator', 'control', 'allow'];
  for (const k of Object.keys(o))
    if (!known.includes(k))
      warnUnknown(
        `ecv.${k}`,
        known.map((n) => `ecv.${n}`),
      );
  const out: ResolvedEcv = { path: '/ecv', control: false, allow: LOOPBACK.slice() };
  if (o.path !== undefined) {
    out.path = str('ecv.path', o.path);
    if (!out.path.startsWith('/')) fail('ecv.path', o.path, 'a path starting with "/"');
  }
  if (o.monitor !== undefined) {
    out.monitor = str('ecv.monitor', o.monitor);
    if (!out.monitor.startsWith('/')) fail('ecv.monitor', o.monitor, 'a path on the app starting with "/"');
  }
  if (o.validator !== undefined) {
    if (typeof o.validator !== 'function')
      fail('ecv.validator', o.validator, 'a function returning a boolean or a promise of one');
    out.validator = o.validator as ResolvedEcv['validator'];
  }
  if (out.monitor !== undefined && out.monitor.split('?')[0] === out.path) {
    fail(
      'ecv.monitor',
      o.monitor,
      `a path other than ecv.path (${JSON.stringify(out.path)}): ECV would wait on itself`,
      true,
    );
  }
  if (o.control !== undefined) out.control = bool('ecv.control', o.control);
  if (o.allow !== undefined) {
    if (!Array.isArray(o.allow) || !o.allow.every((a) => typeof a === 'string' && a !== '')) {
      fail('ecv.allow', o.allow, 'an array of IP addresses');
    }
    for (const a of o.allow as string[])
      if (net.isIP(plainAddress(a)) === 0)
        fail('ecv.allow', o.allow, `an array of IP addresses (${JSON.stringify(a)} is not one)`);
    out.allow = [...new Set([...(o.allow as string[]), ...LOOPBACK])];
  }
  return out;
}

const WORKERS = 'a whole number of workers from 1 to 1024';
const workers = (name: string, v: unknown) => integer(name, v, 1, 1024, WORKERS);

/**
 * An environment variable as an option's default (PORT, WEB_CONCURRENCY, as
 * PaaS platforms set them); unset or empty: `def`. A bad value is refused
 * like a bad option, naming the variable, before anything is forked.
 */
function envDefault<T>(name: string, def: T, min: number, max: number, what: string): number | T {
  const raw = process.env[name];
  if (raw === undefined || raw.trim() === '') return def;
  const n = /^\s*\d+\s*$/.test(raw) ? Number(raw) : NaN;
  if (!(n >= min && n <= max))
    throw new RangeError(`cluster2: environment variable ${name} is ${JSON.stringify(raw)}; it must be ${what}`);
  return n;
}

const METRICS = 'a port, "host:port", an object like { port: 9091, host: "0.0.0.0" }, or false';

/** metrics: 9091, '9091' or '0.0.0.0:9091' (the command line), { port, host }, or false. */
function metricsOption(name: string, v: unknown): Resolved['metrics'] {
  if (v === false) return undefined;
  if (typeof v === 'number') return { port: port(name, v), host: undefined };
  if (typeof v === 'string') {
    const m = /^(?:\[?([^\]]*?)\]?:)?(\d+)$/.exec(v.trim());
    if (!m) fail(name, v, METRICS);
    return { port: port(name, Number(m[2])), host: m[1] || undefined };
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) fail(name, v, METRICS);
  const o = v as Record<string, unknown>;
  for (const k of Object.keys(o))
    if (k !== 'port' && k !== 'host') warnUnknown(`${name}.${k}`, [`${name}.port`, `${name}.host`]);
  return { port: port(`${name}.port`, o.port), host: o.host === undefined ? undefined : str(`${name}.host`, o.host) };
}

const BUCKETS = 'true, false, or an array of increasing bucket bounds in seconds, like [0.01, 0.1, 1]';

/**
 * requestHistogram: true (prom-client's buckets), false, or increasing positive bounds; from a
 * command line or the environment, '0.01,0.1,1' or, as the docs write it, '[0.01, 0.1, 1]'.
 */
function bucketsOption(name: string, v: unknown): number[] | undefined {
  if (v === false || v === 'false') return undefined;
  if (v === true || v === 'true') return DEFAULT_BUCKETS.slice();
  const b: unknown =
    typeof v === 'string'
      ? (/^\s*\[(.*)\]\s*$/s.exec(v)?.[1] ?? v).split(',').map((x) => (x.trim() === '' ? NaN : Number(x)))
      : v;
  if (
    !Array.isArray(b) ||
    b.length === 0 ||
    !b.every((x, i) => typeof x === 'number' && Number.isFinite(x) && x > 0 && (i === 0 || x > b[i - 1]))
  ) {
    fail(name, v, BUCKETS);
  }
  return b.slice();
}

type Check = (name: string, v: unknown) => unknown;
interface Spec {
  def: () => unknown;
  check: Check;
}

/** One table: every option, its default and its check. */
export const SPECS: Record<keyof Resolved, Spec> = {
  cluster: { def: () => true, check: bool },
  port: { def: () => envDefault('PORT', 3000, 0, 65535, PORT), check: port },
  host: { def: () => undefined, check: str },
  noWorkers: {
    def: () => envDefault('WEB_CONCURRENCY', undefined, 1, 1024, WORKERS) ?? defaultWorkers(),
    check: workers,
  },
  pids: { def: () => path.resolve('pids'), check: (n, v) => path.resolve(str(n, v)) },
  monPort: { def: () => 3001, check: (n, v) => (v === false ? false : port(n, v)) },
  monHost: { def: () => '127.0.0.1', check: str },
  ecv: { def: () => ecvOptions(undefined), check: (_n, v) => ecvOptions(v) },
  timeout: { def: () => 30000, check: (n, v) => floored('timeout', v, ms(n, v), true) },
  connThreshold: { def: () => 0, check: (n, v) => optionalCount(n, v) },
  strategy: {
    def: () => 'auto',
    check: (n, v) =>
      STRATEGIES.includes(v as Strategy) ? v : fail(n, v, `one of ${STRATEGIES.map((s) => `"${s}"`).join(', ')}`),
  },
  gracefulTimeout: { def: () => 30000, check: ms },
  drainDelay: { def: () => 0, check: ms },
  maxRequests: { def: () => 0, check: (n, v) => optionalCount(n, v) },
  maxRequestsJitter: {
    def: () => 0,
    check: (n, v) => integer(n, v, 0, Number.MAX_SAFE_INTEGER, 'a whole number >= 0'),
  },
  maxMemory: { def: () => 0, check: (n, v) => floored('maxMemory', v, parseBytes(n, v), true, '16M (16777216 bytes)') },
  maxAge: {
    def: () => 0,
    check: (n, v) =>
      floored('maxAge', v, optionalCount(n, v, 'a number of milliseconds > 0, or 0 / false to turn it off'), true),
  },
  heartbeatTimeout: {
    def: () => 30000,
    check: (n, v) =>
      floored(
        'heartbeatTimeout',
        v,
        optionalCount(n, v, 'a number of milliseconds > 0, or 0 / false to turn it off'),
        true,
      ),
  },
  waitReady: { def: () => false, check: bool },
  listenTimeout: {
    def: () => 30000,
    check: (n, v) => floored('listenTimeout', v, integer(n, v, 1, 2 ** 31 - 1, 'a number of milliseconds > 0'), false),
  },
  spare: { def: () => true, check: bool },
  sticky: {
    def: () => undefined,
    check: (n, v) =>
      v === 'ip' ? v : v === false ? undefined : fail(n, v, '"ip" (one worker per client address), or false'),
  },
  reloadConcurrency: {
    def: () => 0,
    check: (n, v) => integer(n, v, 1, 1024, 'a whole number of workers from 1 to 1024'),
  },
  logs: { def: () => undefined, check: (n, v) => path.resolve(str(n, v)) },
  portBusyExitCode: { def: () => EXIT_PORT_BUSY, check: (n, v) => integer(n, v, 1, 255, 'an exit code from 1 to 255') },
  pidFile: { def: () => undefined, check: (n, v) => path.resolve(str(n, v)) },
  metrics: { def: () => undefined, check: metricsOption },
  requestHistogram: { def: () => undefined, check: bucketsOption },
};

/** Workers a reload replaces at once among `workers`: the option, else 1 up to 4 workers, then 25% of them. */
export function reloadConcurrencyFor(o: Pick<Resolved, 'reloadConcurrency'>, workers: number): number {
  return o.reloadConcurrency || (workers <= 4 ? 1 : Math.max(1, Math.floor(workers / 4)));
}

export const OPTION_NAMES = Object.keys(SPECS) as (keyof Resolved)[];

function warnUnknown(name: string, known: readonly string[]): void {
  // The name may come from a package.json: Node prints the warning as it is, so it is escaped here.
  process.emitWarning(
    `cluster2: unknown option "${safeText(name)}" is ignored (known options: ${known.join(', ')})`,
    'Cluster2Warning',
  );
}

/** Validate user options against the table; throws TypeError/RangeError naming the option. */
export function resolveOptions(input: ClusterOptions | undefined): Resolved {
  if (input === undefined || input === null) input = {};
  if (typeof input !== 'object' || Array.isArray(input)) {
    throw new TypeError(`cluster2: options must be an object, got ${show(input)}`);
  }
  const given = input as Record<string, unknown>;
  for (const k of Object.keys(given)) if (!(k in SPECS)) warnUnknown(k, OPTION_NAMES);
  const out = {} as Record<string, unknown>;
  for (const name of OPTION_NAMES) {
    const v = given[name];
    out[name] = v === undefined ? SPECS[name].def() : SPECS[name].check(name, v);
  }
  const r = out as unknown as Resolved;
  checkSticky(r);
  if (r.port !== 0 && r.monPort === r.port) {
    throw new RangeError(
      `cluster2: option "monPort" is ${r.monPort}, the same as "port"; ` +
        'the monitor needs a port of its own (or monPort: false)',
    );
  }
  return r;
}

/** What sticky: 'ip' needs (lib/master/sticky.ts checks the rest at start, once the strategy is chosen). */
export const STICKY_NEEDS =
  'strategy "reuseport" with the native addon on Linux (a BPF program on the reuseport group picks the worker)';

/** Options that contradict sticky: a TypeError naming both. */
function checkSticky(o: Pick<Resolved, 'sticky' | 'strategy'>): void {
  if (o.sticky && (o.strategy === 'round-robin' || o.strategy === 'shared')) {
    throw new TypeError(
      `cluster2: option "sticky" is "${o.sticky}" with option "strategy" "${o.strategy}"; sticky needs ${STICKY_NEEDS}`,
    );
  }
}
