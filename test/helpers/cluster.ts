// Start a real cluster2 master (test/fixtures/app.js or another fixture) as a
// child process, follow its events, and clean up every process it started.
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as readline from 'node:readline';
import { RUNTIME_EXEC } from './runtime';

export const FIXTURES = path.join(__dirname, '..', 'fixtures');

export interface Ev {
  ev: string;
  args: any[];
}

export interface StartOptions {
  /** Cluster options (JSON); port 0, monPort false, noWorkers 2 and a fresh pids dir by default. */
  opts?: Record<string, unknown>;
  /** C2_KIND for app.js: http (default), net, https, handler, async. */
  kind?: string;
  env?: NodeJS.ProcessEnv;
  fixture?: string;
  args?: string[];
  /** Wait for this many 'listening' events (default opts.noWorkers, or 1 with cluster: false; 0: do not wait). */
  listening?: number;
  timeout?: number;
  /** The runtime that runs the master (default: the runtime under test, test/helpers/runtime.ts). */
  exec?: string;
}

export interface App {
  proc: ChildProcess;
  pid: number;
  port: number;
  pids: string;
  events: Ev[];
  stderr(): string;
  stdout(): string;
  /** Resolves with the first event (already seen or to come) matching. */
  waitFor(ev: string, pred?: (e: Ev) => boolean, timeout?: number): Promise<Ev>;
  /** Resolves when the master has exited. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Pids of workers that are alive now (forked, not died). */
  workers(): number[];
  /** A command line for app.js on stdin: "reload", "resize N". */
  send(line: string): void;
}

interface Tap {
  teardown(fn: () => void | Promise<void>): void;
}

/** Alive and not a zombie (an orphan's zombie may wait for a reaper that never comes). */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    return false;
  }
}

/** Poll until fn() is truthy: see ./wait (the suite's one way to wait). */
import { until } from './wait';
export { until };

/**
 * SIGKILL a process group (the master's; each worker leads its own), the given
 * pids and every process with a pid file in `pids`; resolves once all are gone.
 */
export async function killLeftovers(pids: string, known: number[] = [], group?: number): Promise<void> {
  const all = [...known];
  try {
    for (const f of fs.readdirSync(pids)) {
      const m = /^(?:master|worker)\.(\d+)\.pid$/.exec(f);
      if (m) all.push(Number(m[1]));
    }
  } catch {
    /* no dir */
  }
  if (group) {
    try {
      process.kill(-group, 'SIGKILL');
    } catch {
      /* gone */
    }
  }
  for (const pid of all) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      /* gone */
    }
  }
  await until(() => all.every((p) => !alive(p)), 5000, 'processes to die').catch(() => {});
}

export function tmpdir(prefix = 'c2-'): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

export async function startApp(t: Tap, o: StartOptions = {}): Promise<App> {
  const pids = (o.opts?.pids as string) ?? path.join(tmpdir(), 'pids');
  const opts: Record<string, unknown> = { port: 0, monPort: false, noWorkers: 2, pids, ...o.opts };
  const proc = spawn(o.exec ?? RUNTIME_EXEC, [path.join(FIXTURES, o.fixture ?? 'app.js'), ...(o.args ?? [])], {
    env: { ...process.env, C2_OPTS: JSON.stringify(opts), C2_KIND: o.kind ?? 'http', ...o.env },
    stdio: ['pipe', 'pipe', 'pipe'],
    // Its own process group: the teardown kills the group. The workers lead their own
    // (lib/shared/process-group.ts): they are killed by pid, and one forked in the instant the
    // master was killed leaves by itself when it finds its master gone.
    detached: true,
  });
  proc.stdin!.on('error', () => {});
  const events: Ev[] = [];
  const seen = new Set<number>();
  const dead = new Set<number>();
  let out = '';
  let err = '';
  const waiters = new Set<() => void>();
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    proc.once('exit', (code, signal) => {
      resolve({ code, signal });
      for (const w of waiters) w();
    });
  });
  proc.stderr!.on('data', (d) => {
    err += d;
  });
  readline.createInterface({ input: proc.stdout! }).on('line', (line) => {
    out += `${line}\n`;
    let e: Ev;
    try {
      e = JSON.parse(line);
    } catch {
      return;
    }
    if (!e || typeof e.ev !== 'string') return;
    if (e.ev === 'forked') seen.add(e.args[0]);
    if (e.ev === 'died') dead.add(e.args[0]);
    events.push(e);
    for (const w of waiters) w();
  });
  t.teardown(() => killLeftovers(pids, [proc.pid!, ...seen], proc.pid));
  const app: App = {
    proc,
    pid: proc.pid!,
    port: 0,
    pids,
    events,
    stderr: () => err,
    stdout: () => out,
    exited,
    workers: () => [...seen].filter((p) => !dead.has(p)),
    send: (line) => {
      proc.stdin!.write(`${line}\n`);
    },
    waitFor(ev, pred = () => true, timeout = 15_000) {
      return new Promise((resolve, reject) => {
        let i = 0;
        const check = () => {
          for (; i < events.length; i++) {
            if (events[i].ev === ev && pred(events[i])) {
              done();
              return resolve(events[i]);
            }
          }
          if (proc.exitCode !== null || proc.signalCode !== null) {
            done();
            reject(new Error(`master exited (${proc.exitCode ?? proc.signalCode}) before event ${ev}; stderr: ${err}`));
          }
        };
        const timer = setTimeout(() => {
          done();
          reject(
            new Error(
              `no ${ev} event within ${timeout} ms; events: ${events.map((e) => e.ev).join(',')}; stderr: ${err}`,
            ),
          );
        }, timeout);
        const done = () => {
          clearTimeout(timer);
          waiters.delete(check);
        };
        waiters.add(check);
        check();
      });
    },
  };
  const strategy = await app.waitFor('strategy', undefined, o.timeout).catch((e) => {
    if (o.listening === 0) return null;
    throw e;
  });
  if (strategy) app.port = strategy.args[1];
  const n = o.listening ?? (opts.cluster === false ? 1 : (opts.noWorkers as number));
  for (let k = 0; k < n; k++)
    await app.waitFor(
      'listening',
      (() => {
        let c = 0;
        return () => ++c > k;
      })(),
      o.timeout,
    );
  if (opts.cluster === false && n > 0) {
    const l = await app.waitFor('listening');
    app.port = l.args[1].port;
  }
  return app;
}

/** Wait until the n-th (1-based) event of a kind has arrived. */
export function nth(app: App, ev: string, n: number, timeout?: number): Promise<Ev> {
  let c = 0;
  return app.waitFor(ev, () => ++c >= n, timeout);
}
