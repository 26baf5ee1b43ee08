// Fixed chaos sequences: one per bug the chaos test found (or issue 24 listed), each named for
// what must hold, and the fixed seeds `npm test` replays (test/chaos.test.ts).
import type { Action, Config, Ending, EndingKind, Op, Scenario, Target } from './scenario';

/** A configuration: cluster2 start, reuseport with the addon, plain HTTP, 2 workers, nothing else. */
export function config(c: Partial<Config> = {}): Config {
  return {
    via: 'cli',
    strategy: 'reuseport',
    sticky: false,
    native: true,
    metrics: false,
    pidFile: false,
    ecvControl: false,
    monitor: false,
    proto: 'http',
    workers: 2,
    drainDelay: 0,
    ...c,
  };
}

export function op(a: Action, o: { gap?: number; wait?: boolean; target?: Target } = {}): Op {
  return { ...a, gap: o.gap ?? 200, wait: o.wait ?? true, target: o.target ?? 'started' };
}

export function end(kind: EndingKind, o: Partial<Omit<Ending, 'kind'>> = {}): Ending {
  return { kind, gap: 200, target: 'started', ...o };
}

export function sequence(s: Partial<Scenario> & { config: Config }): Scenario {
  return { atStart: [], ops: [], ending: end('SIGTERM'), after: [], ...s };
}

export interface Named {
  name: string;
  /** Where it comes from: issue 24's finding N, or what the chaos test found (seed). */
  source: string;
  scenario: Scenario;
}

const upgradeBy = (via: 'signal' | 'cli' | 'api') => ({ op: 'upgrade' as const, via, broken: false });
const reloadBy = (via: 'signal' | 'cli' | 'api') => ({ op: 'reload' as const, via, broken: false });

export const REGRESSIONS: Named[] = [
  {
    name: 'SIGTERM to the old master while the new one starts leaves no black hole and no master behind',
    source: 'issue 24, finding 1',
    scenario: sequence({
      config: config({ monitor: true }),
      ops: [op(upgradeBy('signal'), { gap: 0, wait: false })],
      ending: end('SIGTERM', { at: 'upgrading', gap: 0 }),
    }),
  },
  {
    name: 'a SIGHUP while the workers start is carried out once the start completes',
    source: 'issue 24, finding 2',
    scenario: sequence({
      config: config({ via: 'api', workers: 3 }),
      atStart: [op(reloadBy('signal'), { gap: 0, wait: false })],
    }),
  },
  {
    name: 'SIGTERM during a reload shuts down without saying the old workers keep serving',
    source: 'issue 24, finding 3',
    scenario: sequence({
      config: config({ via: 'api', workers: 3 }),
      ops: [op(reloadBy('signal'), { gap: 0, wait: false })],
      ending: end('SIGTERM', { at: 'reloading', gap: 0 }),
    }),
  },
  {
    name: 'an upgrade with metrics set hands the metrics socket over',
    source: 'issue 24, finding 4',
    scenario: sequence({
      config: config({ metrics: true }),
      ops: [op(upgradeBy('cli'))],
      ending: end('cli shutdown'),
    }),
  },
  {
    name: 'a failed upgrade leaves the --pid-file as it was',
    source: 'issue 24, finding 5',
    scenario: sequence({
      config: config({ pidFile: true }),
      ops: [op({ op: 'upgrade', via: 'cli', broken: true })],
    }),
  },
  {
    name: 'cluster2 start lives through two upgrades and carries the exit code of the shutdown',
    source: 'issue 24, finding 6',
    scenario: sequence({
      config: config({ pidFile: true }),
      ops: [op(upgradeBy('cli')), op(upgradeBy('signal'), { target: 'listed' })],
      ending: end('SIGTERM', { target: 'started' }),
    }),
  },
  {
    name: 'the API script lives through two upgrades and carries the exit code of the shutdown',
    source: 'issue 24, finding 6',
    scenario: sequence({
      config: config({ via: 'api', pidFile: true }),
      ops: [op(upgradeBy('api')), op(upgradeBy('signal'), { target: 'started' })],
      ending: end('SIGINT', { target: 'started' }),
    }),
  },
  {
    name: 'sticky sessions hold through an upgrade, under load, losing nothing',
    source: 'issue 24, finding 7',
    scenario: sequence({
      config: config({ sticky: true, workers: 3 }),
      ops: [op(upgradeBy('cli'))],
    }),
  },
  {
    name: 'a WebSocket on an HTTP/2 server (allowHTTP1) gets its close frame at a shutdown',
    source: 'chaos test (TLS configurations)',
    scenario: sequence({ config: config({ via: 'api', proto: 'tls', wsOverTls: true }) }),
  },
  {
    name: 'a SIGTTIN while the workers start is applied',
    source: 'chaos test, seed 1213524952',
    scenario: sequence({
      config: config({ via: 'api' }),
      atStart: [op({ op: 'scale', via: 'signal', up: true }, { gap: 0, wait: false })],
    }),
  },
  {
    name: 'ECV disabled while the workers start: every worker answers DISABLED',
    source: 'chaos test, seed 37971897',
    scenario: sequence({
      // The first worker's ECV route: the change comes while the app's listen callback runs in the others.
      config: config({ via: 'api', workers: 4, ecvControl: true }),
      atStart: [op({ op: 'ecv', via: 'http', enable: false }, { gap: 0 })],
    }),
  },
  {
    name: 'an upgrade asked while the master starts is carried out once it is up',
    source: 'chaos test, seed 1994809048',
    scenario: sequence({
      config: config({ via: 'api', workers: 3 }),
      atStart: [op(upgradeBy('signal'), { gap: 0, wait: false })],
    }),
  },
  {
    name: 'a reload asked while an upgrade runs is carried to the new master',
    source: 'chaos test',
    scenario: sequence({
      config: config(),
      ops: [op(upgradeBy('signal'), { gap: 0, wait: false }), op(reloadBy('cli'), { gap: 300 })],
    }),
  },
  {
    name: 'the new master takes the worker count and the ECV state of the old one',
    source: 'chaos test',
    scenario: sequence({
      config: config({ monitor: true }),
      ops: [
        op({ op: 'scale', via: 'cli', up: true }),
        op({ op: 'ecv', via: 'cli', enable: false }),
        op(upgradeBy('cli')),
      ],
    }),
  },
  {
    name: 'without the addon, a worker SIGKILLed while the others start: refused only until one listens, nothing else lost',
    source: 'chaos test, seed 86571432',
    scenario: sequence({
      config: config({ via: 'api', strategy: 'round-robin', native: false, workers: 3 }),
      atStart: [op({ op: 'killWorker' }, { gap: 0 })],
    }),
  },
  {
    name: 'round-robin: a connection handed to a worker stopped past heartbeatTimeout is not left hanging',
    source: 'chaos test, seed 488128086',
    scenario: sequence({
      config: config({ strategy: 'round-robin', proto: 'tls', drainDelay: 800 }),
      ops: [op({ op: 'stopWorker' }, { gap: 200 })],
      ending: end('cli shutdown', { gap: 366 }),
    }),
  },
  {
    name: 'round-robin: a replacement told to drain while its listen is under way closes once it listens',
    source: 'chaos test, seed 398678364 (a shutdown right after a hung worker was replaced: ECONNRESET)',
    scenario: sequence({
      config: config({ via: 'api', strategy: 'round-robin' }),
      ops: [
        op({ op: 'stopWorker' }, { gap: 0, wait: false }),
        op({ op: 'ecv', via: 'cli', enable: false }, { gap: 0, wait: false }),
      ],
      ending: end('SIGTERM', { gap: 0 }),
    }),
  },
  {
    name: "a master SIGKILLed just after it killed a hung worker leaves none of that worker's processes",
    source:
      "chaos test, seed 373 (the hung worker's child outlived both: its group was ended only once its exit was seen)",
    scenario: sequence({
      config: config({ via: 'api' }),
      ops: [op({ op: 'stopWorker' }, { gap: 0, wait: false })],
      ending: end('SIGKILL serving', { gap: 0 }),
    }),
  },
  {
    name: 'a master whose app reads its stdin is not blocked in it by the processes it forks',
    source:
      'chaos test, seeds 134529841, 1446933647, 1084370912 (a keeper hung in read(0): children made its stdin blocking)',
    scenario: sequence({
      config: config({ via: 'api' }),
      atStart: [op({ op: 'upgrade', via: 'signal', broken: false }, { gap: 437, wait: false, target: 'listed' })],
      ops: [
        op({ op: 'ecv', via: 'http', enable: false }, { gap: 36, target: 'listed' }),
        op({ op: 'ecv', via: 'cli', enable: true }, { gap: 129, target: 'listed' }),
        op({ op: 'stopWorker' }, { gap: 47 }),
        op(reloadBy('cli'), { gap: 76, target: 'listed' }),
      ],
      ending: end('SIGTERM', { gap: 112, at: 'upgraded' }),
      after: [op(reloadBy('api'), { gap: 609, target: 'listed' })],
    }),
  },
  {
    name: "a shutdown's workers are told the master's cut time: every WebSocket gets its close frame",
    source: 'chaos test, seed 657967120 (the accept queues took 2.5 s; each worker thought it had 5 s more: 1006)',
    scenario: sequence({
      config: config({ via: 'api', strategy: 'round-robin' }),
      ops: [
        op({ op: 'stopWorker' }, { gap: 0, wait: false }),
        op({ op: 'stopGroup', ms: 344 }, { gap: 65, target: 'listed' }),
        op({ op: 'killWorker' }, { gap: 359, wait: false, target: 'listed' }),
      ],
      ending: end('SIGTERM', { gap: 211 }),
      after: [op({ op: 'upgrade', via: 'api', broken: false }, { gap: 325, wait: false, target: 'listed' })],
    }),
  },
  {
    name: 'a signal in the last moments of a stop does not take the exit code with it',
    source: 'chaos test, seed 1111745385 (a SIGHUP after SIGINT x2: the master exited by SIGHUP, not 0)',
    scenario: sequence({
      config: config({ ecvControl: true, monitor: true, proto: 'tls' }),
      ops: [
        op({ op: 'stopWorker' }, { gap: 449 }),
        op({ op: 'scale', via: 'cli', up: false }, { gap: 617, wait: false }),
      ],
      ending: end('SIGINT x2', { gap: 451, target: 'listed' }),
      after: [op(reloadBy('signal'), { gap: 161, wait: false, target: 'listed' })],
    }),
  },
  {
    name: 'a signal refused during a shutdown says why on stderr (the API, no warning listener)',
    source: 'chaos test, seed 785808370',
    scenario: sequence({
      config: config({ via: 'api', drainDelay: 800 }),
      ending: end('SIGTERM'),
      after: [op(reloadBy('signal'), { gap: 0 }), op({ op: 'scale', via: 'signal', up: true }, { gap: 50 })],
    }),
  },
];

/**
 * What a stop, a SIGINT, a shutdown and a SIGKILL of either master do at each moment of an
 * upgrade (the new master starting; the old one handing over): one master serving at the
 * end, or none and the ports free; the documented exit code; nothing lost but what the
 * ending allows.
 */
export const UPGRADE_MOMENTS: Named[] = (['upgrading', 'upgraded'] as const).flatMap((at) =>
  (['SIGINT', 'cli stop', 'cli shutdown', 'SIGKILL started', 'SIGKILL serving'] as const).map((kind) => ({
    name: `${kind} once a master says ${at}`,
    source: 'issue 24, finding 1 (every moment of an upgrade)',
    scenario: sequence({
      config: config({ monitor: true, metrics: false }),
      ops: [op(upgradeBy('signal'), { gap: 0, wait: false })],
      ending: end(kind, { at, gap: 0, target: 'listed' }),
    }),
  })),
);

/**
 * Seeds `npm test` replays every time (each draws one sequence; see ./property.ts). A seed
 * means a sequence only for the arbitraries of ./scenario.ts as they are: when those change,
 * pick again (`npm run chaos -- --show 1 --count 400` prints what seeds draw). These four:
 *   164  cluster2 start, shared: ECV during the start, a reload, every process stopped, a
 *        shutdown; an upgrade refused while it drains
 *   241  API, round-robin, TLS: ECV during the start; a reload, a worker SIGKILLed and every
 *        process stopped while it runs; SIGTERM once the reload replaced a worker
 *   261  API, reuseport: a worker SIGKILLed during the start, a scale, ECV, a reload; SIGINT to
 *        the serving master while an upgrade runs
 *   373  cluster2 start, reuseport, TLS: a reload during the start, SIGTTIN, a worker stopped
 *        past heartbeatTimeout; the serving master SIGKILLed; an upgrade refused after
 */
export const FIXED_SEEDS = [164, 241, 261, 373];
