import type { ControlRequest, ControlResults, MasterState } from '../shared/protocol';
import type { Intent } from '../service/service';
import type { Successor, UpgradeResult } from './upgrade';

/**
 * The master's lifecycle as a table: which states follow which, and what an
 * operation asked for in each state does. The one place these are decided
 * (lib/master/master.ts carries them out); docs/lifecycle.md prints the
 * same table, and test/lifecycle-unit.test.ts holds the two together.
 *
 *   idle -> starting -> running <-> reloading
 *                       running <-> upgrading -> handing-over -> stopped
 *   any of starting, running, reloading, upgrading -> draining -> stopped
 *   any state but stopped -> stopped (a stop, a crash loop)
 *
 * handing-over: a new master serves (an upgrade); this one's workers drain and
 * everything asked of it goes to the new one. After it, the process that the
 * user started stays as the keeper (lib/master/keeper.ts); any other exits.
 */
export const NEXT: Readonly<Record<MasterState, readonly MasterState[]>> = {
  idle: ['starting'],
  starting: ['running', 'draining', 'stopped'],
  running: ['reloading', 'upgrading', 'draining', 'stopped'],
  reloading: ['running', 'draining', 'stopped'],
  upgrading: ['running', 'handing-over', 'draining', 'stopped'],
  'handing-over': ['stopped'],
  draining: ['stopped'],
  stopped: [],
};

/** An operation that can be asked of a master (by a signal, the control socket or the API). */
export type Operation = Exclude<ControlRequest['op'], 'status'>;

/**
 * What an operation does in a state:
 *  now    carried out at once;
 *  queue  carried out once the master is running again (reloads asked for
 *         meanwhile coalesce into one, so do upgrades); queued operations go
 *         to the new master when an upgrade hands over, and are cancelled
 *         with the reason when the master ends;
 *  pass   handed to the new master that serves now (an upgrade handed over);
 *  end    the master ends (a shutdown drains, a stop kills); a reload or an
 *         upgrade under way is cancelled (a new master being started ends too);
 *  join   the ending under way is the answer;
 *  refuse refused with the reason (the master is shutting down).
 */
export type Decision = 'now' | 'queue' | 'pass' | 'end' | 'join' | 'refuse';

const ALL = (d: Decision): Record<Operation, Decision> => ({
  reload: d,
  upgrade: d,
  scale: d,
  ecv: d,
  shutdown: d,
  stop: d,
});

export const DECIDE: Readonly<Record<MasterState, Readonly<Record<Operation, Decision>>>> = {
  idle: { ...ALL('refuse') },
  starting: { reload: 'queue', upgrade: 'queue', scale: 'now', ecv: 'now', shutdown: 'end', stop: 'end' },
  running: { reload: 'now', upgrade: 'now', scale: 'now', ecv: 'now', shutdown: 'end', stop: 'end' },
  reloading: { reload: 'queue', upgrade: 'queue', scale: 'now', ecv: 'now', shutdown: 'end', stop: 'end' },
  upgrading: { reload: 'queue', upgrade: 'queue', scale: 'now', ecv: 'now', shutdown: 'end', stop: 'end' },
  'handing-over': { ...ALL('pass') },
  // ECV can still be turned off (enabling is refused by the ECV state itself); a stop cuts the drain short.
  draining: { reload: 'refuse', upgrade: 'refuse', scale: 'refuse', ecv: 'now', shutdown: 'join', stop: 'end' },
  stopped: { ...ALL('refuse'), shutdown: 'join', stop: 'join' },
};

export function decide(state: MasterState, op: Operation): Decision {
  const d = DECIDE[state][op];
  if (TRACE) process.stderr.write(`cluster2-lifecycle: ${state} ${op} ${d}\n`);
  return d;
}

/**
 * CLUSTER2_TRACE_LIFECYCLE=1: each decision as a line on stderr, "cluster2-lifecycle: <state>
 * <operation> <decision>" (the chaos test counts the cells of the table it exercised).
 */
const TRACE = process.env.CLUSTER2_TRACE_LIFECYCLE === '1';

/** Why an operation is refused or cancelled in a state, as its requester is told. */
export function refusal(state: MasterState, op: Operation): string {
  const why = state === 'idle' ? 'the master has not started' : 'the master is shutting down';
  return `cluster2: ${op} refused: ${why}`;
}

/** Why an operation that was queued did not happen: the master ended first. */
export function cancelled(op: Operation): string {
  return `cluster2: ${op} cancelled: the master is shutting down`;
}

// ---- the master's state with its data (lib/master/master.ts holds one Life) --------------

/** An operation asked of the master, and who asked: a signal (which), the control socket or the API. */
export type Request = Exclude<ControlRequest, { op: 'status' }> & {
  origin?: 'signal' | 'control' | 'api';
  sig?: NodeJS.Signals;
};

/** What each operation resolves with. */
export type Result<R extends Request> = R['op'] extends 'upgrade' ? UpgradeResult : ControlResults[R['op']];

export interface Queued {
  req: Request;
  resolve: (v: unknown) => void;
  reject: (e: Error) => void;
}

/** How the master ends: its workers drain (a shutdown, or a hand-over to a new master) or are killed. */
export type How = 'drain' | 'kill';

export interface Ending {
  how: How;
  code: number;
  /** Rejects the start when the master ends before it is up (a crash loop while starting). */
  abortStart?: (e: Error) => void;
  /** A new master serves (an upgrade handed over): ECV stays, no filter on the shared sockets. */
  handedOver?: Successor;
  /** Why, when it is not a plain shutdown or stop: printed on stderr at the end (crash loop, fatal error). */
  reason?: string;
  /** Resolves when a drain turns into a kill (stop during a shutdown, a second SIGINT). */
  killNow: () => void;
  done: Promise<void>;
}

/**
 * The master's state with the data that belongs to it: what a start was asked meanwhile,
 * the reload or upgrade under way, the ending (how, its code). It changes only through to().
 */
export type Life =
  | { state: 'idle' }
  | { state: 'starting'; abort?: (e: Error) => void; early?: How }
  | { state: 'running' }
  | { state: 'reloading'; done: Promise<ControlResults['reload']> }
  | { state: 'upgrading'; gave: { size: number; ecv: boolean }; done: Promise<UpgradeResult> }
  | { state: 'draining' | 'handing-over'; ending: Ending }
  | { state: 'stopped'; ending?: Ending };

/** A signal's intent (lib/service/service.ts) as a request. */
export function requestOf(i: Intent, sig?: NodeJS.Signals): Request {
  const req: Request =
    i === 'grow' || i === 'shrink'
      ? { op: 'scale', delta: i === 'grow' ? 1 : -1 }
      : { op: i === 'shutdown' ? 'shutdown' : i === 'stop' ? 'stop' : i === 'reload' ? 'reload' : 'upgrade' };
  return { ...req, origin: 'signal', sig };
}

/**
 * Take from the queue the first queued operation and every other one of the same kind, in
 * order: the master carries out the last (reloads, and upgrades, asked meanwhile make one).
 */
export function takeBatch(queue: Queued[]): Queued[] {
  const op = queue[0].req.op;
  const same = queue.filter((q) => q.req.op === op);
  const rest = queue.filter((q) => q.req.op !== op);
  queue.splice(0, queue.length, ...rest);
  return same;
}
