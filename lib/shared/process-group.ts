import * as fs from 'node:fs';

/**
 * No stray processes: a worker forked by the reuseport strategies leads its
 * own process group (forked detached), so whatever it starts is in that
 * group, and ending the group ends it all. The master ends a worker's group
 * once the worker has exited (stop, shutdown, recycle, crash); a worker that
 * exits on its own (its master died) ends its group as it goes. node:cluster
 * workers (round-robin, shared) cannot be forked detached and share the
 * master's group.
 */

/** SIGKILL what is left in the group a worker led (nothing, or ESRCH, when it led none). */
export function endGroup(pid: number): void {
  if (pid <= 0) return;
  try {
    process.kill(-pid, 'SIGKILL');
  } catch {
    /* no such group */
  }
}

/** This process's process group id, from /proc (undefined without it). */
function ownGroup(): number | undefined {
  try {
    const stat = fs.readFileSync('/proc/self/stat', 'latin1');
    return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[2]);
  } catch {
    return undefined;
  }
}

/**
 * In a worker that leads its own group: at exit, SIGTERM the group, so what
 * the app started goes with it even when no master is left to do it. (The
 * worker's own SIGTERM handler catches the signal: its exit code stands.)
 */
export function endOwnGroupAtExit(): void {
  if (ownGroup() !== process.pid) return;
  process.on('exit', () => {
    try {
      process.kill(-process.pid, 'SIGTERM');
    } catch {
      /* gone */
    }
  });
}
