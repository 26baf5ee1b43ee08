import type { ControlRequest, MasterState } from '../shared/protocol';

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
  return DECIDE[state][op];
}

/** Why an operation is refused or cancelled in a state, as its requester is told. */
export function refusal(state: MasterState, op: Operation): string {
  const why = state === 'idle' ? 'the master has not started' : 'the master is shutting down';
  return `cluster2: ${op} refused: ${why}`;
}

/** Why an operation that was queued did not happen: the master ended first. */
export function cancelled(op: Operation): string {
  return `cluster2: ${op} cancelled: the master is shutting down`;
}
