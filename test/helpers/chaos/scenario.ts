// What a chaos sequence is: a configuration, operations fired while the cluster starts, the
// operations (each after a random gap, some without waiting for the previous one), an ending,
// and operations fired while the ending is under way. The fast-check arbitraries draw them;
// describe() prints one as a line a person can replay by hand.
import fc from 'fast-check';

export type Strategy = 'reuseport' | 'round-robin' | 'shared';

export interface Config {
  /** Started by the API (test/fixtures/chaos-app.js run by node) or by `cluster2 start`. */
  via: 'api' | 'cli';
  strategy: Strategy;
  /** sticky: 'ip' (reuseport with the addon only). */
  sticky: boolean;
  /** The native addon, or the fallback (CLUSTER2_NATIVE=0). */
  native: boolean;
  metrics: boolean;
  pidFile: boolean;
  ecvControl: boolean;
  monitor: boolean;
  /** http: HTTP/1.1, WebSocket and the upload; tls: HTTP/1.1, the upload and HTTP/2, on one port. */
  proto: 'http' | 'tls';
  workers: number;
  drainDelay: number;
  /** Over TLS, a WebSocket too (not drawn: see ./load.ts; a regression sequence sets it). */
  wsOverTls?: boolean;
}

/** How an operation is asked for: a signal, the `cluster2` command, the API (stdin of the fixture), HTTP (ECV control). */
export type Via = 'signal' | 'cli' | 'api' | 'http';

/** Which master a signal goes to: the process the test started, or the one a pid file in the pids directory names. */
export type Target = 'started' | 'listed';

export type Action =
  | { op: 'reload'; via: 'signal' | 'cli' | 'api'; broken: boolean }
  | { op: 'upgrade'; via: 'signal' | 'cli' | 'api'; broken: boolean }
  | { op: 'scale'; via: 'signal' | 'cli' | 'api'; up: boolean }
  | { op: 'ecv'; via: 'cli' | 'http'; enable: boolean }
  /** While an ending is under way: a second one (a shutdown joins it, a stop cuts its drain short). */
  | { op: 'end'; how: 'SIGTERM' | 'SIGQUIT' | 'cli shutdown' | 'cli stop' }
  | { op: 'killWorker' }
  | { op: 'stopWorker' }
  | { op: 'stopGroup'; ms: number };

export type Op = Action & {
  /** ms before it is fired. */
  gap: number;
  /** Wait until it is done (and the cluster settled) before the next one; false: the next one fires while it runs. */
  wait: boolean;
  target: Target;
};

export type EndingKind =
  | 'SIGTERM'
  | 'SIGINT'
  | 'SIGINT x2'
  | 'cli shutdown'
  | 'cli stop'
  | 'api shutdown'
  | 'api stop'
  | 'SIGKILL started'
  | 'SIGKILL serving';

export interface Ending {
  kind: EndingKind;
  gap: number;
  target: Target;
  /**
   * 'starting': fired while the cluster starts (after the operations fired then; the other
   * operations are not run). 'reloading': once the first worker of a reload under way was
   * replaced. 'upgrading', 'upgraded': a moment of an upgrade under way, once a master says so
   * (the new master starts; it serves and the old one hands over). Then after the gap (under
   * 100 ms).
   */
  at?: Moment;
}

export type Moment = 'starting' | 'reloading' | 'upgrading' | 'upgraded';

export interface Scenario {
  config: Config;
  /** Fired once the first worker listens, while the others start. */
  atStart: Op[];
  ops: Op[];
  ending: Ending;
  /** Fired right after the ending, while it is under way: each must be refused, saying why. */
  after: Op[];
}

export const HEARTBEAT_MS = 1000;
/** Scaling keeps the worker count within these (one worker stopped must leave another serving). */
export const MIN_WORKERS = 2;
export const MAX_WORKERS = 4;
export const GRACEFUL_MS = 5000;

const viaArb = fc.constantFrom<'signal' | 'cli' | 'api'>('signal', 'cli', 'api');
/** One reload or upgrade in five runs broken code (its new workers throw at start). */
const brokenArb = fc.oneof({ weight: 4, arbitrary: fc.constant(false) }, { weight: 1, arbitrary: fc.constant(true) });
const target = fc.constantFrom<Target>('started', 'listed');

export const actionArb: fc.Arbitrary<Action> = fc.oneof(
  fc.record({ op: fc.constant('reload' as const), via: viaArb, broken: brokenArb }),
  fc.record({ op: fc.constant('upgrade' as const), via: viaArb, broken: brokenArb }),
  fc.record({ op: fc.constant('scale' as const), via: viaArb, up: fc.boolean() }),
  fc.record({
    op: fc.constant('ecv' as const),
    via: fc.constantFrom<'cli' | 'http'>('cli', 'http'),
    enable: fc.boolean(),
  }),
  fc.record({ op: fc.constant('killWorker' as const) }),
  fc.record({ op: fc.constant('stopWorker' as const) }),
  fc.record({ op: fc.constant('stopGroup' as const), ms: fc.integer({ min: 200, max: HEARTBEAT_MS - 400 }) }),
);

const opArb = (action: fc.Arbitrary<Action>): fc.Arbitrary<Op> =>
  fc
    .record({ action, gap: fc.integer({ min: 0, max: 800 }), wait: fc.boolean(), target })
    .map(({ action: a, ...rest }) => ({ ...a, ...rest }));

/** While the cluster starts: what a user may ask then (no broken code), or the first worker killed. */
const startActionArb: fc.Arbitrary<Action> = fc.oneof(
  fc.record({ op: fc.constant('killWorker' as const) }),
  fc.record({ op: fc.constant('reload' as const), via: viaArb, broken: fc.constant(false) }),
  fc.record({ op: fc.constant('upgrade' as const), via: viaArb, broken: fc.constant(false) }),
  fc.record({ op: fc.constant('scale' as const), via: viaArb, up: fc.boolean() }),
  fc.record({ op: fc.constant('ecv' as const), via: fc.constant('cli' as const), enable: fc.boolean() }),
);

/** While an ending is under way: what must be refused, a second ending, a worker killed. */
const afterActionArb: fc.Arbitrary<Action> = fc.oneof(
  fc.record({ op: fc.constant('reload' as const), via: viaArb, broken: fc.constant(false) }),
  fc.record({ op: fc.constant('upgrade' as const), via: viaArb, broken: fc.constant(false) }),
  fc.record({ op: fc.constant('scale' as const), via: viaArb, up: fc.boolean() }),
  fc.record({
    op: fc.constant('ecv' as const),
    via: fc.constantFrom<'cli' | 'http'>('cli', 'http'),
    enable: fc.constant(true),
  }),
  fc.record({
    op: fc.constant('end' as const),
    how: fc.constantFrom<'SIGTERM' | 'SIGQUIT' | 'cli shutdown' | 'cli stop'>(
      'SIGTERM',
      'SIGQUIT',
      'cli shutdown',
      'cli stop',
    ),
  }),
  fc.record({ op: fc.constant('killWorker' as const) }),
);

export const configArb: fc.Arbitrary<Config> = fc
  .record({
    via: fc.constantFrom<'api' | 'cli'>('api', 'cli'),
    strategy: fc.constantFrom<Strategy>('reuseport', 'round-robin', 'shared'),
    sticky: fc.boolean(),
    native: fc.oneof({ weight: 3, arbitrary: fc.constant(true) }, { weight: 1, arbitrary: fc.constant(false) }),
    metrics: fc.boolean(),
    pidFile: fc.boolean(),
    ecvControl: fc.boolean(),
    monitor: fc.boolean(),
    proto: fc.constantFrom<'http' | 'tls'>('http', 'tls'),
    workers: fc.integer({ min: 2, max: 3 }),
    drainDelay: fc.constantFrom(0, 800),
  })
  // sticky needs reuseport and the addon (else the start is refused: not what this test is about).
  .map((c) => ({ ...c, sticky: c.sticky && c.strategy === 'reuseport' && c.native }));

export const endingArb: fc.Arbitrary<Ending> = fc.record(
  {
    kind: fc.constantFrom<EndingKind>(
      'SIGTERM',
      'SIGINT',
      'SIGINT x2',
      'cli shutdown',
      'cli stop',
      'api shutdown',
      'api stop',
      'SIGKILL started',
      'SIGKILL serving',
    ),
    gap: fc.integer({ min: 0, max: 800 }),
    target,
    // Mostly after its gap; one in ten while starting, and one in ten at each moment of a reload
    // or an upgrade (when one is under way as the ending comes).
    at: fc.oneof(
      { weight: 6, arbitrary: fc.constant(undefined) },
      ...(['starting', 'reloading', 'upgrading', 'upgraded'] as const).map((m) => ({
        weight: 1,
        arbitrary: fc.constant(m),
      })),
    ),
  },
  { requiredKeys: ['kind', 'gap', 'target'] },
);

export const scenarioArb: fc.Arbitrary<Scenario> = fc.record({
  config: configArb,
  // 2 to 7 operations in all, 4.5 on average: short sequences find the meetings of two operations.
  atStart: fc.array(opArb(startActionArb), { maxLength: 1 }),
  ops: fc.array(opArb(actionArb), { minLength: 1, maxLength: 4 }),
  ending: endingArb,
  after: fc.array(opArb(afterActionArb), { maxLength: 1 }),
});

/**
 * What is done for `op` under `config`: the API exists only when started by the API, the
 * ECV's HTTP route only with ecv.control. (Kept out of the arbitraries so that one sequence
 * shrinks the same whatever its configuration.)
 */
export function effective<T extends Op>(op: T, config: Config): T {
  if (op.op === 'ecv' && op.via === 'http' && !config.ecvControl) return { ...op, via: 'cli' };
  if ('via' in op && op.via === 'api' && config.via !== 'api') return { ...op, via: 'cli' };
  return op;
}

export function effectiveEnding(e: Ending, config: Config): Ending {
  if (config.via === 'api') return e;
  if (e.kind === 'api shutdown') return { ...e, kind: 'cli shutdown' };
  if (e.kind === 'api stop') return { ...e, kind: 'cli stop' };
  return e;
}

/** Where an operation comes: the gap before it, kept short while the cluster starts or ends (so it lands then). */
export function gapOf(op: Op, phase: 'start' | 'run' | 'after'): number {
  return phase === 'start' ? op.gap % 100 : phase === 'after' ? op.gap % 200 : op.gap;
}

export function describeOp(op: Op, config: Config, phase: 'start' | 'run' | 'after' = 'run', step?: 1 | -1): string {
  const o = effective(op, config);
  const up = o.op === 'scale' ? (step ? step > 0 : o.up) : false;
  let what: string;
  switch (o.op) {
    case 'reload':
    case 'upgrade': {
      const how = o.via === 'signal' ? (o.op === 'reload' ? 'SIGHUP' : 'SIGUSR2') + ` to ${o.target}` : o.via;
      what = `${o.op}${o.broken ? ' (broken code)' : ''} by ${how}`;
      break;
    }
    case 'scale':
      what = `scale ${up ? '+1' : '-1'} by ${o.via === 'signal' ? `${up ? 'SIGTTIN' : 'SIGTTOU'} to ${o.target}` : o.via}`;
      break;
    case 'ecv':
      what = `ecv ${o.enable ? 'enable' : 'disable'} by ${o.via}`;
      break;
    case 'end':
      what = o.how.startsWith('SIG') ? `${o.how} to ${o.target}` : o.how;
      break;
    case 'killWorker':
      what = 'SIGKILL a worker';
      break;
    case 'stopWorker':
      what = `SIGSTOP a worker past heartbeatTimeout`;
      break;
    case 'stopGroup':
      what = `SIGSTOP every process for ${o.ms} ms`;
      break;
  }
  return `+${gapOf(o, phase)}ms ${what}${waits(o) || phase !== 'run' ? '' : ' (no wait)'}`;
}

export function describeConfig(c: Config): string {
  return [
    c.via === 'api' ? 'API' : 'cluster2 start',
    c.strategy,
    c.sticky ? 'sticky' : '',
    c.native ? 'addon' : 'CLUSTER2_NATIVE=0',
    c.proto,
    `${c.workers} workers`,
    c.metrics ? 'metrics' : '',
    c.pidFile ? 'pidFile' : '',
    c.ecvControl ? 'ecv.control' : '',
    c.monitor ? 'monitor' : '',
    c.drainDelay ? `drainDelay ${c.drainDelay}` : '',
  ]
    .filter(Boolean)
    .join(', ');
}

/** A broken reload or upgrade always waits (nothing else may start while the code on disk is broken). */
export function waits(op: Op): boolean {
  return op.wait || ('broken' in op && op.broken);
}

/** The operation a moment belongs to. */
export function momentOp(at: Moment): 'reload' | 'upgrade' | undefined {
  return at === 'reloading' ? 'reload' : at === 'starting' ? undefined : 'upgrade';
}

/**
 * The moment the ending waits for: 'starting' always; a moment of a reload or an upgrade only
 * when one that must succeed is still under way as the ending comes (fired after the last
 * operation that waited).
 */
export function endingMoment(s: Scenario): Moment | undefined {
  const at = s.ending.at;
  if (at === 'starting') return at;
  if (!at || (at !== 'reloading' && !s.config.native)) return undefined;
  let last = -1;
  s.ops.forEach((o, i) => {
    if (waits(o)) last = i;
  });
  const underWay = s.ops.slice(last + 1).some((o) => o.op === momentOp(at) && !o.broken);
  return underWay ? at : undefined;
}

export function gapOfEnding(s: Scenario): number {
  return endingMoment(s) ? s.ending.gap % 100 : s.ending.gap;
}

export function describeEnding(s: Scenario): string {
  const e = effectiveEnding(s.ending, s.config);
  const to = ['SIGTERM', 'SIGINT', 'SIGINT x2'].includes(e.kind) ? ` to ${e.target}` : '';
  const at = endingMoment(s);
  const when =
    at === 'starting'
      ? 'while the cluster starts, '
      : at === 'reloading'
        ? 'once the reload replaced a worker, '
        : at
          ? `once a master says ${at}, `
          : '';
  return `${when}+${gapOfEnding(s)}ms END ${e.kind}${to}`;
}

/**
 * The sequence, one step a line. The scale steps are as the model turns them (kept within
 * 2..4 workers), so the lines say what was done.
 */
export function describe(s: Scenario): string {
  const lines = [`config: ${describeConfig(s.config)}`];
  let size = s.config.workers;
  const step = (op: Op): 1 | -1 | undefined => {
    if (op.op !== 'scale') return undefined;
    const d = op.up ? (size >= MAX_WORKERS ? -1 : 1) : size <= MIN_WORKERS ? 1 : -1;
    size += d;
    return d;
  };
  for (const op of s.atStart) lines.push(`  during start: ${describeOp(op, s.config, 'start', step(op))}`);
  if (s.ending.at !== 'starting') for (const op of s.ops) lines.push(`  ${describeOp(op, s.config, 'run', step(op))}`);
  lines.push(`  ${describeEnding(s)}`);
  for (const op of s.after) lines.push(`  while ending: ${describeOp(op, s.config, 'after')}`);
  return lines.join('\n');
}
