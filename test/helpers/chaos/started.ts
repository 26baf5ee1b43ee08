// The process the user starts (P): test/fixtures/chaos-app.js run by node (the API), or
// `cluster2 start chaos-app.js` (the command). Both tell what happens in lines: the API's
// master prints its events as JSON on stdout ({ev, args, pid}), the command logs them as JSON
// on stderr (--log-format json: {event, pid, msg, ...}); both are read here into one list of
// events, each with the time it arrived. An upgrade's new master shares these stdio.
import { spawn, type ChildProcess } from 'node:child_process';
import * as path from 'node:path';
import * as readline from 'node:readline';
import { FIXTURES } from '../cluster';
import { CLI } from '../cli';
import { TAG_ENV } from './procs';
import { GRACEFUL_MS, HEARTBEAT_MS, type Config } from './scenario';

export const CHAOS_APP = path.join(FIXTURES, 'chaos-app.js');
/** Workers started within this long of P's start listen late (slot x 300 ms): P takes 1 to 3 s to start. */
const SLOW_START_MS = 5000;

export interface Event {
  t: number;
  ev: string;
  /** The master that said it. */
  pid: number;
  /** The API's event arguments, or the command's log line. */
  args: unknown[];
  /** The command's human message (msg), or the API's arguments as text. */
  msg: string;
}

export interface Line {
  t: number;
  text: string;
}

export interface Started {
  proc: ChildProcess;
  pid: number;
  /** When it was started (times in reports are relative to it). */
  startedAt: number;
  events: Event[];
  /** stderr, a line each. */
  stderr: Line[];
  exit?: { code: number | null; signal: NodeJS.Signals | null; t: number };
  exited: Promise<void>;
  /** A command for the API's master (stdin); false when it cannot be written. */
  send(line: string): boolean;
  /** The first event matching (seen or to come); rejects at the deadline or when P exits first. */
  waitFor(ev: string, pred: ((e: Event) => boolean) | undefined, timeout: number): Promise<Event>;
}

export interface Ports {
  monitor?: number;
  metrics?: number;
  pidFile?: string;
}

/** The cluster options of a configuration, as the API takes them. */
export function optionsOf(c: Config, pids: string, ports: Ports): Record<string, unknown> {
  return {
    port: 0,
    noWorkers: c.workers,
    pids,
    strategy: c.strategy,
    heartbeatTimeout: HEARTBEAT_MS,
    gracefulTimeout: GRACEFUL_MS,
    drainDelay: c.drainDelay,
    monPort: ports.monitor ?? false,
    ...(c.sticky ? { sticky: 'ip' } : {}),
    ...(ports.metrics ? { metrics: `127.0.0.1:${ports.metrics}` } : {}),
    ...(ports.pidFile ? { pidFile: ports.pidFile } : {}),
    ...(c.ecvControl ? { ecv: { control: true } } : {}),
  };
}

/** The same as flags of `cluster2 start`. */
function flagsOf(c: Config, pids: string, ports: Ports): string[] {
  return [
    '--log-format',
    'json',
    '--port',
    '0',
    '--workers',
    String(c.workers),
    '--pids',
    pids,
    '--strategy',
    c.strategy,
    '--heartbeat-timeout',
    String(HEARTBEAT_MS),
    '--graceful-timeout',
    String(GRACEFUL_MS),
    '--drain-delay',
    String(c.drainDelay),
    ...(ports.monitor ? ['--mon-port', String(ports.monitor)] : ['--no-mon-port']),
    ...(c.sticky ? ['--sticky', 'ip'] : []),
    ...(ports.metrics ? ['--metrics', `127.0.0.1:${ports.metrics}`] : []),
    ...(ports.pidFile ? ['--pid-file', ports.pidFile] : []),
    ...(c.ecvControl ? ['--ecv-control'] : []),
  ];
}

export function start(c: Config, o: { pids: string; tag: string; broken: string; ports: Ports }): Started {
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    [TAG_ENV]: o.tag,
    C2_CHAOS_PROTO: c.proto,
    C2_CHAOS_BROKEN: o.broken,
    // The first start takes a while (the fixture's listenLate): what is fired then lands in it.
    C2_CHAOS_SLOW_UNTIL: String(Date.now() + SLOW_START_MS),
    C2_OPTS: JSON.stringify(optionsOf(c, o.pids, o.ports)),
  };
  // Each decision of the state x operation table on stderr: the cells the run exercised (run.ts).
  env.CLUSTER2_TRACE_LIFECYCLE = '1';
  if (!c.native) env.CLUSTER2_NATIVE = '0';
  else delete env.CLUSTER2_NATIVE;
  const argv = c.via === 'api' ? [CHAOS_APP] : [CLI, 'start', CHAOS_APP, ...flagsOf(c, o.pids, o.ports)];
  const proc = spawn(process.execPath, argv, {
    env,
    stdio: ['pipe', 'pipe', 'pipe'],
    // Its own group, as a shell would start it: a signal to the test's group does not reach it.
    detached: true,
  });
  proc.stdin!.on('error', () => {});
  const events: Event[] = [];
  const stderr: Line[] = [];
  const waiters = new Set<() => void>();
  const wake = () => {
    for (const w of waiters) w();
  };
  const s: Started = {
    proc,
    pid: proc.pid!,
    startedAt: Date.now(),
    events,
    stderr,
    exited: new Promise<void>((resolve) => {
      proc.once('exit', (code, signal) => {
        s.exit = { code, signal, t: Date.now() };
        resolve();
        wake();
      });
    }),
    send(line) {
      if (!proc.stdin!.writable) return false;
      proc.stdin!.write(`${line}\n`);
      return true;
    },
    waitFor(ev, pred = () => true, timeout) {
      return new Promise((resolve, reject) => {
        const check = () => {
          const e = events.find((x) => x.ev === ev && pred(x));
          if (e) return done(() => resolve(e));
          if (s.exit) done(() => reject(new Error(`P exited (${s.exit!.code ?? s.exit!.signal}) before ${ev}`)));
        };
        const timer = setTimeout(() => done(() => reject(new Error(`no ${ev} within ${timeout} ms`))), timeout);
        const done = (then: () => void) => {
          clearTimeout(timer);
          waiters.delete(check);
          then();
        };
        waiters.add(check);
        check();
      });
    },
  };
  readline.createInterface({ input: proc.stdout! }).on('line', (text) => {
    const e = parse(text);
    if (e && 'ev' in e && typeof e.ev === 'string') {
      const args: unknown[] = Array.isArray(e.args) ? e.args : [];
      const msg = args.map((a) => (typeof a === 'string' ? a : JSON.stringify(a))).join(' ');
      events.push({ t: Date.now(), ev: e.ev, pid: Number(e.pid), args, msg });
      wake();
    }
  });
  readline.createInterface({ input: proc.stderr! }).on('line', (text) => {
    const t = Date.now();
    stderr.push({ t, text });
    const l = parse(text);
    if (l && typeof l.event === 'string') {
      events.push({ t, ev: l.event, pid: Number(l.pid), args: [l], msg: String(l.msg ?? '') });
      wake();
    }
  });
  return s;
}

function parse(text: string): any {
  if (!text.startsWith('{')) return undefined;
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/** The app port: the API's strategy event (args[1]) or the command's strategy line (port). */
export function portOf(e: Event): number {
  const a = e.args[0] as { port?: number } | undefined;
  return typeof e.args[1] === 'number' ? e.args[1] : Number(a?.port);
}
