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
 * A group is ended as PM2 and supervisord end a process tree: SIGTERM, then,
 * for what is still there after GROUP_GRACE_MS (a process that ignores or
 * traps SIGTERM), SIGKILL. A worker that exits (a drain, a crash, its master
 * gone) ends its own group as it goes (endOwnGroupAtExit): when its master was
 * SIGKILLed, nobody else is left to. The master ends the group of a worker that
 * died without doing so (SIGKILLed: stop, a hung worker, gracefulTimeout), and
 * waits for that before it exits.
 */

/** Between the SIGTERM to a group and the SIGKILL to what is still in it. */
export const GROUP_GRACE_MS = 1000;
/** How often the members of a group being ended are looked at. */
const POLL_MS = 20;

/**
 * End the group a worker led, once that worker has exited: SIGTERM, then
 * SIGKILL after `grace` ms to whatever is left. Resolves when the group is
 * empty (at once when it already is: the worker ended it). Only for a worker
 * that led one (see leadsGroup): a group outlives its leader while it has
 * members, and its id (the leader's pid) is not given to a new process
 * meanwhile, so this reaches only what the worker started.
 */
export async function endGroup(pid: number, grace = GROUP_GRACE_MS): Promise<void> {
  if (pid <= 0 || !signalGroup(pid, 0)) return;
  if (!signalGroup(pid, 'SIGTERM')) return;
  const deadline = Date.now() + grace;
  while (hasMembers(pid)) {
    if (Date.now() >= deadline) {
      signalGroup(pid, 'SIGKILL');
      return;
    }
    await new Promise((r) => setTimeout(r, POLL_MS));
  }
}

/** kill(-group, signal); false when the group has no process left (ESRCH). */
export function signalGroup(group: number, signal: NodeJS.Signals | 0): boolean {
  try {
    process.kill(-group, signal);
    return true;
  } catch {
    return false;
  }
}

/**
 * The group has a process left that is not a zombie. A zombie has ended
 * already, and one whose parent does not reap it (an init that does not, in a
 * container) would keep a kill(-group, 0) answering for ever. Without /proc:
 * kill(-group, 0).
 */
function hasMembers(group: number): boolean {
  const m = members(group);
  return m === undefined ? signalGroup(group, 0) : m.length > 0;
}

/** The live (not zombie) processes of a group, but `except`, from /proc; undefined without /proc. */
function members(group: number, except?: number): number[] | undefined {
  let names: string[];
  try {
    names = fs.readdirSync('/proc');
  } catch {
    return undefined;
  }
  const out: number[] = [];
  for (const name of names) {
    const c = name.charCodeAt(0);
    if (c < 48 || c > 57) continue; // not a pid
    const pid = Number(name);
    if (pid === except) continue;
    const s = stat(pid);
    if (s && s.group === group && s.state !== 'Z' && s.state !== 'X') out.push(pid);
  }
  return out;
}

/** State and process group id of a process, from /proc/<pid>/stat; undefined when it cannot be read. */
function stat(pid: number | 'self'): { state: string; group: number } | undefined {
  try {
    const s = fs.readFileSync(`/proc/${pid}/stat`, 'latin1');
    // After the command name, in parentheses (it may hold spaces and parentheses): state ppid pgrp ...
    const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
    const group = Number(f[2]);
    return Number.isInteger(group) && group > 0 ? { state: f[0], group } : undefined;
  } catch {
    return undefined;
  }
}

/** The process group id of a process, from /proc (undefined without it, or when the process is gone). */
export function groupOf(pid: number | 'self'): number | undefined {
  return stat(pid)?.group;
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
 * In a worker that leads its own group: at exit, end the group, so what the
 * app started goes with it even when no master is left to do it. SIGTERM the
 * group (the worker's own SIGTERM handler catches its copy: an exit handler
 * runs no more JavaScript, so its exit code stands), then wait, blocking, for
 * up to `grace` ms while a member is left, and SIGKILL each one still there.
 * The wait blocks the exit only while a member ignores SIGTERM; an exit
 * handler cannot wait any other way.
 */
export function endOwnGroupAtExit(grace = GROUP_GRACE_MS): void {
  if (groupOf('self') !== process.pid) return;
  process.on('exit', () => endOwnGroup(grace));
}

function endOwnGroup(grace: number): void {
  const self = process.pid;
  if (!signalGroup(self, 'SIGTERM')) return;
  const nap = new Int32Array(new SharedArrayBuffer(4));
  const deadline = Date.now() + grace;
  let left = members(self, self);
  while (left && left.length > 0 && Date.now() < deadline) {
    Atomics.wait(nap, 0, 0, POLL_MS);
    left = members(self, self);
  }
  // SIGKILL by pid (the group's SIGKILL would end this process too, and its exit code with it). A
  // member may fork between the listing and its kill: its child is in the group, and in the next
  // listing. A process SIGKILLed forks no more, so this ends; the bound is for one that cannot die at
  // once (uninterruptible sleep), which is left to the master, if any.
  for (let round = 0; left && left.length > 0 && round < 50; round++) {
    for (const pid of left) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        /* gone */
      }
    }
    Atomics.wait(nap, 0, 0, 1);
    left = members(self, self);
  }
}
