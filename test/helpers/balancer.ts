// A load balancer (nginx, HAProxy) in the foreground as a child process, in front of
// cluster2 instances: what it prints, its log file, and SIGKILL by pid on teardown.
import type { Test } from 'tap';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import { alive, until, type App } from './cluster';
import { request } from './http';

export interface Balancer {
  name: string;
  pid: number;
  /** What it printed on stdout and stderr. */
  output(): string;
  /** Its log file ('' without one, or before it is written). */
  log(): string;
}

/** The pids of `pid`'s children ([] once it is gone). */
function children(pid: number): number[] {
  try {
    return fs.readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

/**
 * Start `argv` (a balancer that stays in the foreground). On teardown it and its worker
 * processes are SIGKILLed by pid (a graceful stop could leave a worker behind), and
 * awaited.
 */
export function startBalancer(t: Test, name: string, argv: string[], o: { logFile?: string } = {}): Balancer {
  const proc = spawn(argv[0], argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'] });
  const pid = proc.pid!;
  let out = '';
  proc.stdout!.on('data', (d) => {
    out += d;
  });
  proc.stderr!.on('data', (d) => {
    out += d;
  });
  t.teardown(async () => {
    // Its children first: once it is gone they are another process's.
    const all = [pid, ...children(pid)];
    for (const p of all) {
      try {
        process.kill(p, 'SIGKILL');
      } catch {
        /* gone */
      }
    }
    await until(() => !all.some(alive), 5000).catch(() => {});
  });
  const log = () => {
    if (!o.logFile) return '';
    try {
      return fs.readFileSync(o.logFile, 'utf8');
    } catch {
      return '';
    }
  };
  return { name, pid, output: () => out, log };
}

/** Until requests through the balancer on `front` have reached a worker of every instance. */
export async function everyInstanceInRotation(b: Balancer, front: number, apps: Record<string, App>): Promise<void> {
  const seen = new Set<string>();
  const reached = (app: App) => app.workers().some((p) => seen.has(String(p)));
  await until(
    async () => {
      const r = await request(front, '/').catch(() => null);
      if (r?.status === 200) seen.add(r.body.split(' ')[1]);
      return Object.values(apps).every(reached);
    },
    15_000,
    `${b.name} to send traffic to every instance`,
  ).catch((e: Error) => {
    throw new Error(`${e.message}; ${b.name} printed: ${b.output()}${b.log()}`);
  });
}
