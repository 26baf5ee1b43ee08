// Every process a chaos sequence's cluster started, found by a tag in its environment
// (C2_CHAOS_TAG, inherited by the masters, the workers, the spare and what the workers
// start), whatever its parent, group or session: an upgrade's new master, a worker whose
// master died and a worker's own child are all found the same way.
import * as fs from 'node:fs';
import * as net from 'node:net';
import { alive } from '../cluster';

export const TAG_ENV = 'C2_CHAOS_TAG';

export interface Proc {
  pid: number;
  ppid: number;
  pgrp: number;
  /** 'master': a node process without CLUSTER2_ROLE (the one started, an upgrade's new master);
   * 'worker': a worker or the spare; 'child': what a worker started. */
  role: 'master' | 'worker' | 'child';
  stopped: boolean;
}

function readStat(pid: number): { ppid: number; pgrp: number; state: string; comm: string } | undefined {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const close = stat.lastIndexOf(')');
    const f = stat.slice(close + 2).split(' ');
    return { comm: stat.slice(stat.indexOf('(') + 1, close), state: f[0], ppid: Number(f[1]), pgrp: Number(f[2]) };
  } catch {
    return undefined;
  }
}

/** The live (not zombie) processes carrying `tag`. */
export function tagged(tag: string): Proc[] {
  const want = `${TAG_ENV}=${tag}`;
  const out: Proc[] = [];
  for (const name of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const pid = Number(name);
    let env: string[];
    try {
      env = fs.readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0');
    } catch {
      continue;
    }
    if (!env.includes(want)) continue;
    const st = readStat(pid);
    if (!st || st.state === 'Z' || st.state === 'X') continue;
    const role = st.comm !== 'node' ? 'child' : env.some((e) => e.startsWith('CLUSTER2_ROLE=')) ? 'worker' : 'master';
    out.push({ pid, ppid: st.ppid, pgrp: st.pgrp, role, stopped: st.state === 'T' });
  }
  return out;
}

export function signal(pid: number, sig: NodeJS.Signals): boolean {
  try {
    process.kill(pid, sig);
    return true;
  } catch {
    return false;
  }
}

/** SIGKILL every tagged process and the given pids (by pid, stopped ones too); resolves once all are gone. */
export async function killAll(tag: string, pids: number[] = []): Promise<void> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const left = [...new Set([...pids.filter(alive), ...tagged(tag).map((p) => p.pid)])];
    if (left.length === 0 || Date.now() > deadline) return;
    for (const pid of left) signal(pid, 'SIGKILL');
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** True when nothing listens on the port: a plain bind succeeds (SO_REUSEADDR: TIME_WAIT does not count). */
export function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.once('error', () => resolve(false));
    s.listen(port, () => s.close(() => resolve(true)));
  });
}

/** A port free now (bound to 0, then closed): for the monitor and metrics servers. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

/** The pids named by `<role>.<pid>.pid` files in the directory. */
export function pidFiles(dir: string, role: 'master' | 'worker'): number[] {
  try {
    return fs
      .readdirSync(dir)
      .map((f) => new RegExp(`^${role}\\.(\\d+)\\.pid$`).exec(f))
      .filter((m): m is RegExpExecArray => m !== null)
      .map((m) => Number(m[1]))
      .sort((a, b) => a - b);
  } catch {
    return [];
  }
}

/** Every file left in the pids directory. */
export function filesIn(dir: string): string[] {
  try {
    return fs.readdirSync(dir).sort();
  } catch {
    return [];
  }
}
