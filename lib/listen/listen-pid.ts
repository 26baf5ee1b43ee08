import * as fs from 'node:fs';
import { sys } from '../shared/native';
import { safeText } from '../shared/safe-text';

/**
 * Whose are the sockets of socket activation? systemd sets LISTEN_PID to the
 * process it started (sd_listen_fds(3)). When that is not this master, the
 * variables reached it through something that started it: `npx`, `npm exec`,
 * `sh -c`, an init script. They are this master's when that process is one
 * of its ancestors, still there, and does nothing but wait for it (neither it
 * nor any process between them has another child), and the descriptors did
 * reach this process: npm and Node's child_process close every descriptor
 * above 2 in what they start, a shell passes them on. Otherwise they are refused:
 * serving on the default port instead, as a process that ignores them does,
 * would leave the activated port without an answer.
 */

/** How far up the ancestry is searched. */
const MAX_DEPTH = 64;

export type ListenPidVerdict = { ok: true; note?: string } | { ok: false; reason: string };

/** A process's parent pid, from /proc (Linux); undefined when it cannot be read. */
function parentOf(pid: number): number | undefined {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'latin1');
    // The command name (field 2) may hold spaces and parentheses: count from the last ')'.
    const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
    return Number.isInteger(ppid) ? ppid : undefined;
  } catch {
    return undefined;
  }
}

/** This process's ancestors, parent first, up to pid 1 (only the parent where there is no /proc). */
export function ancestors(): number[] {
  const out = [process.ppid];
  for (let pid = process.ppid; out.length < MAX_DEPTH && pid > 1;) {
    const up = parentOf(pid);
    if (up === undefined || up < 1) break;
    out.push(up);
    pid = up;
  }
  return out;
}

/** How many children each process has (Linux /proc); empty where it cannot be read. */
function childCounts(): Map<number, number> {
  const counts = new Map<number, number>();
  let names: string[];
  try {
    names = fs.readdirSync('/proc');
  } catch {
    return counts;
  }
  for (const name of names) {
    if (!/^\d+$/.test(name)) continue;
    const ppid = parentOf(Number(name));
    if (ppid !== undefined) counts.set(ppid, (counts.get(ppid) ?? 0) + 1);
  }
  return counts;
}

/** `pid (its command line)`, shortened and escaped (another process's text). */
export function describe(pid: number): string {
  let cmd = '';
  try {
    cmd = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean).join(' ');
  } catch {
    /* gone, or no /proc */
  }
  if (cmd.length > 80) cmd = `${cmd.slice(0, 77)}...`;
  return safeText(cmd ? `${pid} (${cmd})` : String(pid));
}

/** Why descriptor `fd` is not a listening socket handed over, or null when it is one. */
function notASocket(fd: number): string | null {
  let st: fs.Stats;
  try {
    st = fs.fstatSync(fd);
  } catch {
    return 'is not open';
  }
  if (!st.isSocket()) return 'is not a socket';
  // With the addon: a TCP socket that listens (acceptQueue is -1 for one that does not, null for other kinds).
  const queue = sys.acceptQueue(fd);
  if (queue === -1) return 'is a socket that does not listen';
  return null;
}

/**
 * May this process take the `n` sockets of LISTEN_FDS, from descriptor `first` on, given
 * LISTEN_PID (`listenPid`, as set)? `ancestry` and `pid`: this process's ancestors and pid
 * (tests give their own).
 */
export function judgeListenPid(
  listenPid: string | undefined,
  first: number,
  n: number,
  ancestry: () => number[] = ancestors,
  pid = process.pid,
  children: () => Map<number, number> = childCounts,
): ListenPidVerdict {
  const head = `LISTEN_FDS=${n} is set`;
  if (listenPid === undefined || !/^[1-9]\d*$/.test(listenPid)) {
    return {
      ok: false,
      reason:
        `${head}, but LISTEN_PID is ${listenPid === undefined ? 'not' : `"${safeText(listenPid)}", not a pid`}: ` +
        'socket activation names the process the sockets are for',
    };
  }
  const owner = Number(listenPid);
  if (owner === pid) return { ok: true };
  const chain = ancestry();
  const at = chain.indexOf(owner);
  if (at < 0) {
    let alive = true;
    try {
      process.kill(owner, 0);
    } catch (e) {
      alive = (e as NodeJS.ErrnoException).code === 'EPERM';
    }
    const who = alive
      ? `process ${describe(owner)}, which is not an ancestor of this master`
      : `process ${owner}, gone`;
    return {
      ok: false,
      reason: `${head} for LISTEN_PID=${owner}: ${who}; the sockets are that process's, not this master's`,
    };
  }
  const between = chain.slice(0, at).reverse();
  const shown = between.slice(0, 3).map((p) => describe(p));
  if (between.length > 3) shown.push(`${between.length - 3} more`);
  const who =
    `LISTEN_PID=${describe(owner)}, an ancestor of this master` +
    (shown.length ? ` (through ${shown.join(', ')})` : '');
  // A launcher (npx, npm exec, sh -c) started this master and waits for it: it has no other child,
  // nor has any process between them. An ancestor with other children (init, a session's shell,
  // a daemon) is not waiting for this master: the sockets are its own.
  const counts = children();
  const busy = counts.size > 0 ? [owner, ...between].find((p) => (counts.get(p) ?? 1) !== 1) : undefined;
  if (busy !== undefined) {
    return {
      ok: false,
      reason:
        `${head} for ${who}, but process ${describe(busy)} has ${counts.get(busy)} children: ` +
        "it does not merely wait for this master, so the sockets are not this master's",
    };
  }
  for (let fd = first; fd < first + n; fd++) {
    const why = notASocket(fd);
    if (why) {
      return {
        ok: false,
        reason:
          `${head} for ${who}, but descriptor ${fd} ${why} here: the sockets did not reach this master ` +
          '(npx, npm and Node close every descriptor above 2 in what they start); ' +
          'run cluster2 itself under the socket activation (node_modules/.bin/cluster2 start APP)',
      };
    }
  }
  return {
    ok: true,
    note: `socket activation: ${head} for ${who}, which started it and waits for it; its sockets are adopted`,
  };
}
