import type { ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import { UPGRADE_ENV } from '../listen/inherited';
import { sys } from '../shared/native';
import { MASTER_SIGNALS } from '../shared/protocol';

/**
 * The process the user started (`cluster2 start` from a terminal, a container's
 * entrypoint, a unit's ExecStart, or `node app.js`) is the service: it lives as
 * long as the service, through upgrades, and carries the final exit code, as
 * einhorn's and socketmaster's long-lived parents do.
 *
 * It is the first master. When an upgrade has handed over and its own workers
 * are gone, it stays as the keeper: a thin parent that forwards every signal it
 * gets to the master serving now, and exits with that master's exit code
 * (128 + n when it was killed by signal n). With the addon it is a child
 * subreaper (PR_SET_CHILD_SUBREAPER): a master started by a later upgrade, forked
 * by the master it replaces, is reparented to the keeper when that one exits,
 * and the keeper follows it (found by the CLUSTER2_UPGRADE its environment was
 * started with). Without the addon, each replaced master stays as the keeper of
 * the one it started (a chain of thin processes, one per upgrade).
 *
 * Every master started by an upgrade watches the keeper: when it is gone
 * (SIGKILLed), the master shuts down, so nothing outlives the service.
 */

/** CLUSTER2_TRACE_LIFECYCLE=1: what the keeper does, as lines on stderr (as lib/master/lifecycle.ts decide()). */
const TRACING = process.env.CLUSTER2_TRACE_LIFECYCLE === '1';
function trace(what: string): void {
  if (TRACING) process.stderr.write(`cluster2-keeper ${process.pid}: ${what}\n`);
}

/** The environment variable a master started by an upgrade finds its keeper in: "<pid>:reap" or "<pid>:relay". */
export const KEEPER_ENV = 'CLUSTER2_KEEPER';

export interface KeeperRef {
  pid: number;
  /** The keeper is a child subreaper: a replaced master may exit, its successor is adopted. */
  reaps: boolean;
}

/** Read (and remove from the environment, so no worker sees it) this master's keeper. */
export function takeKeeper(env: NodeJS.ProcessEnv = process.env): KeeperRef | undefined {
  const v = env[KEEPER_ENV];
  delete env[KEEPER_ENV];
  const m = /^(\d+):(reap|relay)$/.exec(v ?? '');
  return m ? { pid: Number(m[1]), reaps: m[2] === 'reap' } : undefined;
}

export function keeperEnv(k: KeeperRef): string {
  return `${k.pid}:${k.reaps ? 'reap' : 'relay'}`;
}

/** This process as the keeper of the masters to come: a subreaper when the addon can make it one. */
export function becomeKeeperRef(): KeeperRef {
  try {
    return { pid: process.pid, reaps: sys.setSubreaper() };
  } catch {
    return { pid: process.pid, reaps: false };
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** How often a master started by an upgrade looks whether its keeper is still there. */
export const KEEPER_WATCH_MS = 250;

/** Call `gone` once the keeper has exited; returns a function that stops the watch. */
export function watchKeeper(k: KeeperRef, gone: () => void): () => void {
  const t = setInterval(() => {
    if (alive(k.pid)) return;
    clearInterval(t);
    gone();
  }, KEEPER_WATCH_MS);
  t.unref();
  return () => clearInterval(t);
}

/** Children of this process (every thread's), from /proc. */
function children(): number[] {
  const out: number[] = [];
  let tasks: string[];
  try {
    tasks = fs.readdirSync('/proc/self/task');
  } catch {
    return out;
  }
  for (const t of tasks) {
    try {
      for (const p of fs.readFileSync(`/proc/self/task/${t}/children`, 'utf8').split(' ')) if (p) out.push(Number(p));
    } catch {
      /* the thread went */
    }
  }
  return out;
}

function zombie(pid: number): boolean {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] === 'Z';
  } catch {
    return false;
  }
}

/** The child of this process that an upgrade of master `from` started (reparented here), if any. */
export function findSuccessor(from: number): number | undefined {
  for (const pid of children()) {
    let env: string;
    try {
      env = fs.readFileSync(`/proc/${pid}/environ`, 'utf8');
    } catch {
      continue;
    }
    const entry = env.split('\0').find((e) => e.startsWith(`${UPGRADE_ENV}=`));
    if (!entry) continue;
    try {
      if ((JSON.parse(entry.slice(UPGRADE_ENV.length + 1)) as { from?: number }).from === from && !zombie(pid))
        return pid;
    } catch {
      /* not ours */
    }
  }
  return undefined;
}

/** An exit as a code: 128 + n for a signal. */
export function exitCodeOf(code: number | null, signal: NodeJS.Signals | number | null): number {
  if (code !== null) return code;
  const n = typeof signal === 'number' ? signal : signal ? os.constants.signals[signal] : 0;
  return 128 + (n ?? 0);
}

export interface KeeperEvents {
  /** A signal came (it is forwarded). */
  signal(sig: NodeJS.Signals): void;
  /** The master it keeps now. */
  keeps(pid: number): void;
  /** The last master exited with `code`: the keeper exits with it. */
  exit(code: number): void;
}

/**
 * The keeper: forwards MASTER_SIGNALS to the master it keeps; follows that master's
 * successors; exits (through `events.exit`) with the last one's code.
 */
export class Keeper {
  private current: { pid: number; child?: ChildProcess };
  private readonly handlers = new Map<NodeJS.Signals, () => void>();
  private readonly poll: NodeJS.Timeout;
  private readonly onChld = () => this.check();
  private done = false;
  /** Signals that came while the master kept had already exited: for its successor. */
  private pending: NodeJS.Signals[] = [];

  /** `child`: the master's ChildProcess when this process forked it (libuv reaps it). */
  constructor(
    pid: number,
    child: ChildProcess | undefined,
    private readonly events: KeeperEvents,
  ) {
    this.current = { pid, child };
    for (const sig of MASTER_SIGNALS) {
      const h = () => {
        events.signal(sig);
        // A master that has exited (dead, or a zombie not yet reaped) cannot act on it: its
        // successor, found once its exit is seen, gets it instead (lib/master/keeper.ts gone()).
        if (!this.deliver(this.current.pid, sig)) this.pending.push(sig);
      };
      this.handlers.set(sig, h);
      process.on(sig, h);
    }
    process.on('SIGCHLD', this.onChld);
    // Keeps the process alive (signal handlers do not), and looks again in case a SIGCHLD was merged.
    this.poll = setInterval(() => this.check(), 1000);
    this.follow();
  }

  /** Send `sig` to `pid`; false when it cannot act on it (gone, or a zombie). */
  private deliver(pid: number, sig: NodeJS.Signals): boolean {
    try {
      process.kill(pid, sig);
    } catch {
      return false;
    }
    return !zombie(pid);
  }

  get pid(): number {
    return this.current.pid;
  }

  private follow(): void {
    const { pid, child } = this.current;
    trace(`keeps ${pid}${child ? ' (its child)' : ''}`);
    this.events.keeps(pid);
    if (!child) return this.check();
    if (child.exitCode !== null || child.signalCode !== null) return this.gone(pid, child.exitCode, child.signalCode);
    child.once('exit', (code, signal) => this.gone(pid, code, signal));
  }

  /** A SIGCHLD or the poll: the master kept (when not libuv's child) exited? Reap other orphans adopted. */
  private check(): void {
    if (this.done) return;
    const { pid, child } = this.current;
    for (const c of children()) {
      if (c === child?.pid || c === pid || !zombie(c)) continue;
      try {
        sys.waitPid(c); // an orphan adopted as subreaper: reap it
      } catch {
        /* not ours any more */
      }
    }
    if (child || !sys.can.adopt) {
      if (!child && !alive(pid)) this.gone(pid, null, null);
      return;
    }
    let r: { code: number | null; signal: number | null } | null;
    try {
      r = sys.waitPid(pid) ?? null;
    } catch {
      r = alive(pid) ? null : { code: null, signal: null };
    }
    if (r) this.gone(pid, r.code, r.signal);
  }

  private gone(pid: number, code: number | null, signal: NodeJS.Signals | number | null): void {
    if (this.done || pid !== this.current.pid) return;
    const next = findSuccessor(pid);
    trace(`${pid} exited (${code ?? signal}); successor ${next ?? 'none'}`);
    if (next !== undefined) {
      this.current = { pid: next };
      for (const sig of this.pending.splice(0)) this.deliver(next, sig);
      this.follow();
      return;
    }
    this.done = true;
    clearInterval(this.poll);
    process.off('SIGCHLD', this.onChld);
    for (const [sig, h] of this.handlers) process.off(sig, h);
    this.events.exit(exitCodeOf(code, signal));
  }
}
