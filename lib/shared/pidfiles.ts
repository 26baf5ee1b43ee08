import * as fs from 'node:fs';
import * as path from 'node:path';
import { createExclusive, distrust, GONE, pidFileContent, signalable, warnIgnored } from './pid-trust';

export type Role = 'master' | 'worker';

const NAME = /^(master|worker)\.(\d+)\.pid$/;

export function pidFile(dir: string, role: Role, pid: number): string {
  return path.join(dir, `${role}.${pid}.pid`);
}

/**
 * Write `<dir>/<role>.<pid>.pid` holding the pid and its start time, created
 * exclusively (never through a link); the directory must exist (the master
 * prepares it). Throws an error naming the file.
 */
export function writePidFile(dir: string, role: Role, pid = process.pid): string {
  const file = pidFile(dir, role, pid);
  createExclusive(file, pidFileContent(pid));
  return file;
}

export function removePidFile(dir: string, role: Role, pid: number): void {
  try {
    fs.unlinkSync(pidFile(dir, role, pid));
  } catch {
    /* already gone */
  }
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

/**
 * Pids of live processes of a role in the directory, from pid files that
 * pass every check of pid-trust.ts; any other file is ignored with a warning
 * naming it. Files of dead processes (left by a SIGKILL or a crash) are
 * removed on the way, so they never mislead.
 */
export function findPids(dir: string, role: Role): number[] {
  let names: string[];
  try {
    names = fs.readdirSync(dir);
  } catch {
    return [];
  }
  const live: number[] = [];
  for (const name of names) {
    const m = NAME.exec(name);
    if (!m || m[1] !== role) continue;
    const pid = Number(m[2]);
    if (pid === process.pid) continue;
    const file = path.join(dir, name);
    const why = distrust(file, pid);
    if (why === null) live.push(pid);
    else {
      if (why.stale) removePidFile(dir, role, pid);
      if (why.reason !== GONE) warnIgnored(file, why.reason);
    }
  }
  return live.sort((a, b) => a - b);
}

/**
 * Remove the pid files of processes that are gone (a SIGKILLed master cannot remove its
 * own): the last step of every master's way out, so that none is left to mislead.
 */
export function sweepStale(dir: string): void {
  let names: string[];
  try {
    names = fs.readdirSync(dir);
  } catch {
    return;
  }
  for (const name of names) {
    const m = NAME.exec(name);
    if (!m || Number(m[2]) === process.pid) continue;
    if (distrust(path.join(dir, name), Number(m[2]))?.stale) removePidFile(dir, m[1] as Role, Number(m[2]));
  }
}
