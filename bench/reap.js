'use strict';
// Whatever the bench started ends with it: on SIGINT, SIGTERM, SIGHUP, an
// uncaught error, and any other way out. The bench starts cluster2 masters
// (whose workers lead sessions of their own, and whose upgrades start new
// masters), reference servers, load clients, wrk through bash: every one of
// them is a descendant of the bench's process by parent pid until its parent
// dies. So the bench ends its whole tree of descendants, read from /proc,
// before it exits, and never by what it remembers it started: a server started
// while a scenario was being cut short, or a worker forked meanwhile, would be
// missed, and reparented to pid 1 once its master was gone.
const fs = require('node:fs');

/** Each live process's parent, from /proc/<pid>/stat (a zombie has exited: left out). */
function parents() {
  /** @type {Map<number, number>} */
  const out = new Map();
  let names;
  try {
    names = fs.readdirSync('/proc');
  } catch {
    return out;
  }
  for (const name of names) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${name}/stat`, 'latin1');
      // After the command name, in parentheses (it may hold spaces and parentheses): state ppid ...
      const [state, ppid] = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (state !== 'Z' && state !== 'X') out.set(Number(name), Number(ppid));
    } catch {
      /* gone meanwhile */
    }
  }
  return out;
}

/** The live descendants of `root` (children, their children, ...), from /proc. */
function descendants(root = process.pid) {
  /** @type {Map<number, number[]>} */
  const children = new Map();
  for (const [pid, ppid] of parents()) {
    const list = children.get(ppid);
    if (list) list.push(pid);
    else children.set(ppid, [pid]);
  }
  const out = [];
  const queue = [root];
  while (queue.length) {
    for (const child of children.get(queue.shift()) ?? []) {
      out.push(child);
      queue.push(child);
    }
  }
  return out;
}

function signal(pid, sig) {
  try {
    process.kill(pid, sig);
  } catch {
    /* gone */
  }
}

/**
 * End every descendant of this process, synchronously (it runs in an exit
 * handler too). SIGSTOP first, until no new one appears: a stopped process
 * forks no more, so a master cannot fork a worker between the listing and the
 * kill, and none is killed before the others are held (a worker whose master
 * died would be reparented, out of the tree). Then SIGKILL each one.
 * Returns how many there were.
 */
function reapDescendants() {
  const held = new Set();
  for (let round = 0; round < 100; round++) {
    const fresh = descendants().filter((pid) => !held.has(pid));
    if (fresh.length === 0) break;
    for (const pid of fresh) {
      signal(pid, 'SIGSTOP');
      held.add(pid);
    }
  }
  for (const pid of held) signal(pid, 'SIGKILL');
  return held.size;
}

/** The exit code of a process ended by a signal: 128 + its number. */
const CODES = { SIGHUP: 129, SIGINT: 130, SIGTERM: 143 };

/**
 * Make every way out of this process end what it started. On SIGINT, SIGTERM
 * or SIGHUP: `onInterrupt(why)` (synchronous: it stops the bench from starting
 * anything more), the descendants ended, then `cleanup()` (asynchronous, bounded
 * by CLEANUP_MS: temporary directories), and exit 128 + the signal's number. On
 * an uncaught error or rejection: the same, exit 1. On any exit: the
 * descendants ended (nothing is left by then when all went well). Returns
 * `ending()`: true once an interruption is being handled (it exits; the caller
 * must not exit first with a code of its own).
 * @param {{ name: string, onInterrupt?: (why: string) => void, cleanup?: () => Promise<unknown> | void }} o
 * @returns {{ ending: () => boolean }}
 */
function endWithMe(o) {
  let ending = false;
  const end = (why, code) => {
    if (ending) return;
    ending = true;
    process.stderr.write(`${o.name}: ${why}; stopping everything it started\n`);
    try {
      o.onInterrupt?.(why);
    } catch {
      /* ending anyway */
    }
    const n = reapDescendants();
    if (n) process.stderr.write(`${o.name}: ${n} process(es) ended\n`);
    const timer = setTimeout(() => process.exit(code), CLEANUP_MS);
    Promise.resolve()
      .then(() => o.cleanup?.())
      .catch(() => {})
      .finally(() => {
        clearTimeout(timer);
        process.exit(code);
      });
  };
  for (const sig of Object.keys(CODES)) process.on(sig, () => end(`interrupted (${sig})`, CODES[sig]));
  const text = (e) => (e instanceof Error && e.stack) || String(e);
  process.on('uncaughtException', (e) => end(`uncaught error: ${text(e)}`, 1));
  process.on('unhandledRejection', (e) => end(`unhandled rejection: ${text(e)}`, 1));
  process.on('exit', () => {
    reapDescendants();
  });
  return { ending: () => ending };
}

/** How long the cleanup after an interruption may take before the bench exits anyway. */
const CLEANUP_MS = 10_000;

module.exports = { descendants, reapDescendants, endWithMe };
