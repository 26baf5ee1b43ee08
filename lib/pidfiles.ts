import * as fs from 'node:fs';
import * as path from 'node:path';

export type Role = 'master' | 'worker';

const NAME = /^(master|worker)\.(\d+)\.pid$/;

export function pidFile(dir: string, role: Role, pid: number): string {
  return path.join(dir, `${role}.${pid}.pid`);
}

/** Write `<dir>/<role>.<pid>.pid` holding the pid. */
export function writePidFile(dir: string, role: Role, pid = process.pid): string {
  fs.mkdirSync(dir, { recursive: true });
  const file = pidFile(dir, role, pid);
  fs.writeFileSync(file, `${pid}\n`);
  return file;
}

export function removePidFile(dir: string, role: Role, pid: number): void {
  try { fs.unlinkSync(pidFile(dir, role, pid)); } catch { /* already gone */ }
}

/**
 * Is this pid a live process? A pid file can outlive its process and the pid be
 * reused, so on Linux the process must also be a node process.
 */
export function isAlive(pid: number): boolean {
  if (!signalable(pid)) return false;
  try {
    return fs.readFileSync(`/proc/${pid}/cmdline`, 'latin1').includes('node');
  } catch {
    return true; // no /proc (not Linux): trust the signal check
  }
}

function signalable(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    // EPERM: it exists but belongs to someone else.
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Pids of live processes of a role in the directory. Files of dead processes
 * (left by a SIGKILL or a crash) are removed on the way, so they never mislead.
 */
export function findPids(dir: string, role: Role): number[] {
  let names: string[];
  try { names = fs.readdirSync(dir); } catch { return []; }
  const live: number[] = [];
  for (const name of names) {
    const m = NAME.exec(name);
    if (!m || m[1] !== role) continue;
    const pid = Number(m[2]);
    if (pid !== process.pid && isAlive(pid)) live.push(pid);
    else if (pid !== process.pid) removePidFile(dir, role, pid);
  }
  return live.sort((a, b) => a - b);
}
