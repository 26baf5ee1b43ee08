// Run the `cluster2` command (dist/cli.js) as a subprocess, as a user would:
// `run()` for a command that ends, `startCli()` for `cluster2 start` in the
// foreground (its JSON log lines on stderr are followed, every process it
// started is killed in t.teardown).
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as readline from 'node:readline';
import { FIXTURES, killLeftovers, tmpdir } from './cluster';
import { PKG_DIST } from './package';
import { RUNTIME_EXEC } from './runtime';

export { killLeftovers };

export const CLI = path.join(PKG_DIST, 'cli', 'main.js');
export const CLI_APP = path.join(FIXTURES, 'cli-app.js');

if (!fs.existsSync(CLI)) throw new Error(`${CLI} is missing: run npm run compile first`);

export interface Ran {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Run `cluster2 ...args` to its end (killed after `timeout`). */
export function run(args: string[], o: { cwd?: string; env?: NodeJS.ProcessEnv; timeout?: number } = {}): Promise<Ran> {
  return new Promise((resolve) => {
    const p = spawn(RUNTIME_EXEC, [CLI, ...args], {
      cwd: o.cwd,
      env: { ...process.env, ...o.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    p.stdout!.on('data', (d) => {
      stdout += d;
    });
    p.stderr!.on('data', (d) => {
      stderr += d;
    });
    const timer = setTimeout(() => p.kill('SIGKILL'), o.timeout ?? 60_000);
    p.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
  });
}

export interface LogLine {
  event: string;
  pid: number;
  [k: string]: any;
}

export interface Started {
  proc: ChildProcess;
  pid: number;
  port: number;
  pids: string;
  lines: LogLine[];
  stderr(): string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** The first log line (seen or to come) of an event matching pred. */
  waitFor(event: string, pred?: (l: LogLine) => boolean, timeout?: number): Promise<LogLine>;
}

interface Tap {
  teardown(fn: () => void | Promise<void>): void;
}

/**
 * `cluster2 start APP --log-format json --pids <fresh> --port 0 --no-mon-port
 * --workers 2 ...args`; resolves once the master logged `ready`
 * (`ready: false`: at once, for a start expected to fail).
 */
export async function startCli(
  t: Tap,
  o: {
    args?: string[];
    app?: string;
    env?: NodeJS.ProcessEnv;
    cwd?: string;
    pids?: string;
    defaults?: boolean;
    ready?: boolean;
    /** The node binary that runs `cluster2 start` (default: this one). */
    node?: string;
  } = {},
): Promise<Started> {
  const pids = o.pids ?? path.join(tmpdir('c2cli-'), 'pids');
  const defaults = o.defaults === false ? [] : ['--port', '0', '--no-mon-port', '--workers', '2', '--pids', pids];
  const proc = spawn(
    o.node ?? RUNTIME_EXEC,
    [CLI, 'start', o.app ?? CLI_APP, '--log-format', 'json', ...defaults, ...(o.args ?? [])],
    {
      cwd: o.cwd,
      env: { ...process.env, ...o.env },
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    },
  );
  const lines: LogLine[] = [];
  const workers = new Set<number>();
  let err = '';
  const waiters = new Set<() => void>();
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    proc.once('exit', (code, signal) => {
      resolve({ code, signal });
      for (const w of waiters) w();
    });
  });
  readline.createInterface({ input: proc.stderr! }).on('line', (line) => {
    err += `${line}\n`;
    let l: LogLine;
    try {
      l = JSON.parse(line);
    } catch {
      return;
    }
    if (!l || typeof l.event !== 'string') return;
    if (typeof l.worker === 'number') workers.add(l.worker);
    // A new master of an upgrade (in a session of its own; its pid file comes only once it serves).
    if (l.event === 'upgrading' && typeof l.master === 'number') workers.add(l.master);
    if (typeof l.replacement === 'number') workers.add(l.replacement);
    lines.push(l);
    for (const w of waiters) w();
  });
  t.teardown(() => killLeftovers(pids, [proc.pid!, ...workers], proc.pid));
  const s: Started = {
    proc,
    pid: proc.pid!,
    port: 0,
    pids,
    lines,
    exited,
    stderr: () => err,
    waitFor(event, pred = () => true, timeout = 20_000) {
      return new Promise((resolve, reject) => {
        const check = () => {
          const l = lines.find((x) => x.event === event && pred(x));
          if (l) return done(() => resolve(l));
          if (proc.exitCode !== null || proc.signalCode !== null) {
            done(() =>
              reject(
                new Error(
                  `cluster2 start exited (${proc.exitCode ?? proc.signalCode}) before ${event}; stderr: ${err}`,
                ),
              ),
            );
          }
        };
        const timer = setTimeout(
          () => done(() => reject(new Error(`no ${event} within ${timeout} ms; stderr: ${err}`))),
          timeout,
        );
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
  if (o.ready !== false) s.port = (await s.waitFor('ready')).port;
  return s;
}

/** `cluster2 status --json` of one pids directory: the masters' status objects. */
export async function statusOf(pids: string): Promise<any[]> {
  const r = await run(['status', '--pids', pids, '--json']);
  if (r.code !== 0) throw new Error(`cluster2 status exited ${r.code}: ${r.stderr}`);
  return JSON.parse(r.stdout);
}
