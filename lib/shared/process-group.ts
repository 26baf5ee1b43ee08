import * as fs from 'node:fs';

/**
 * No stray processes: every worker (and the spare) leads its own process
 * group, so whatever it starts is in that group, and ending the group ends it
 * all. The reuseport strategies fork detached; round-robin and shared fork
 * through node:cluster, made to fork detached too (lib/listen/detached-fork.ts).
 * A detached child calls setsid() before exec: it leads a new session and
 * process group, with no controlling terminal, so a Ctrl-C at the terminal
 * reaches the master alone, which decides (shutdown, then stop).
 *
 * The master ends a worker's group once the worker has exited (stop,
 * shutdown, recycle, crash); a worker that exits on its own (its master died)
 * ends its group as it goes.
 */

/**
 * SIGKILL what is left in the group a worker led. Only for a worker that led
 * one (see leadsGroup): a group outlives its leader while it has members, and
 * its id (the leader's pid) is not given to a new process meanwhile, so this
 * reaches only what the worker started; with no member left it is ESRCH.
 */
export function endGroup(pid: number): void {
  if (pid <= 0) return;
  try {
    process.kill(-pid, 'SIGKILL');
  } catch {
    /* no such group */
  }
}

/** The process group id of a process, from /proc (undefined without it, or when the process is gone). */
export function groupOf(pid: number | 'self'): number | undefined {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'latin1');
    const id = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[2]);
    return Number.isInteger(id) && id > 0 ? id : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Does the process lead its own process group? undefined when that cannot be
 * told (no /proc). For a child not yet reaped (its pid cannot be another's).
 */
export function leadsGroup(pid: number | undefined): boolean | undefined {
  if (pid === undefined || pid <= 0) return undefined;
  const group = groupOf(pid);
  return group === undefined ? undefined : group === pid;
}

/**
 * In a worker that leads its own group: at exit, SIGTERM the group, so what
 * the app started goes with it even when no master is left to do it. (The
 * worker's own SIGTERM handler catches the signal: its exit code stands.)
 */
export function endOwnGroupAtExit(): void {
  if (groupOf('self') !== process.pid) return;
  process.on('exit', () => {
    try {
      process.kill(-process.pid, 'SIGTERM');
    } catch {
      /* gone */
    }
  });
}
