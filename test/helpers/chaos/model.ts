// The model of the lifecycle (docs/lifecycle.md's state x operation table): what the cluster must
// look like once it settled after each step (worker count, ECV, which reloads and upgrades
// were carried out), which request failures the operations allow, and what each operation's
// requester must be told.
import type { Failure } from './load';
import { MAX_WORKERS, MIN_WORKERS, type Config, type Ending, type Op } from './scenario';

/** When an operation was fired relative to the ending: before it, or while it was under way. */
export type Phase = 'start' | 'run' | 'after' | 'ending';

export interface Outcome {
  /** The command's exit code and output. */
  code?: number | null;
  stdout?: string;
  stderr?: string;
  /** The API's answer (<cmd>-ok / <cmd>-error) or the HTTP route's. */
  ok?: boolean;
  message?: string;
  /** A signal: false when the process was gone (ESRCH). */
  sent?: boolean;
}

export interface OpRecord {
  label: string;
  op?: Op;
  ending?: Ending;
  phase: Phase;
  at: number;
  done?: number;
  /** The master a signal was sent to. */
  target?: number;
  /** killWorker / stopWorker: the worker, and when it was seen gone (or resumed). */
  worker?: number;
  until?: number;
  /** What was expected: carried out, refused (saying why), or failing (broken code; saying why). */
  expect: 'accepted' | 'refused' | 'fails' | 'none';
  /** Something that did not hold (a stopped worker not replaced, a failure nothing told of). */
  note?: string;
  /** Something that did not happen, and says nothing of the cluster (no worker to kill then). */
  info?: string;
  outcome?: Outcome;
  /** Resolves once done (a command exited, an answer came, a stopped worker was replaced). */
  promise: Promise<void>;
}

export type ErrClass = 'refused' | 'reset' | 'timeout' | 'wrong';

/** What kind of failure an error is: refused (nothing was sent), reset (cut), timeout (a black hole), or a wrong answer. */
export function classify(error: string): ErrClass {
  if (error === 'ECONNREFUSED') return 'refused';
  if (error === 'TIMEOUT' || /timed out/i.test(error)) return 'timeout';
  if (error.startsWith('status-') || error === 'bad-body') return 'wrong';
  return 'reset';
}

export class Model {
  size: number;
  ecv = true;
  /** The last reload that must have been carried out: every worker serving at the end of the step started after it. */
  reloadAt?: number;
  /** The last upgrade that must have been carried out: the serving master started after it. */
  upgradeAt?: number;
  upgrades = 0;
  ending?: { kind: Ending['kind']; at: number };
  /** Since when a stop cuts what the workers hold (the ending, or a stop during a shutdown). */
  cutAt?: number;
  /** Windows in which failures on one worker's connections are allowed (it was killed). */
  readonly windows: { from: number; to: number; pid?: number; why: string; cls?: ErrClass[] }[] = [];
  readonly records: OpRecord[] = [];

  constructor(readonly config: Config) {
    this.size = config.workers;
  }

  /** The addon hands the listening sockets over; without it (round-robin or shared on Node 20) there is nothing to hand. */
  get canUpgrade(): boolean {
    return this.config.native;
  }

  get stopping(): boolean {
    return this.ending !== undefined;
  }

  /** A scale step as fired: +1 or -1, kept within MIN..MAX_WORKERS. */
  scaleStep(up: boolean): 1 | -1 {
    if (up && this.size >= MAX_WORKERS) return -1;
    if (!up && this.size <= MIN_WORKERS) return 1;
    return up ? 1 : -1;
  }

  /** An operation is fired: what it must do. */
  fired(rec: OpRecord): void {
    this.records.push(rec);
    const op = rec.op;
    if (op?.op === 'end') {
      // A second ending: a shutdown joins the one under way, a stop cuts its drain short.
      rec.expect = 'accepted';
      if (op.how === 'SIGQUIT' || op.how === 'cli stop') this.cutAt ??= rec.at;
      return;
    }
    if (op?.op === 'killWorker') rec.expect = 'none';
    // The process the user started SIGKILLed after an upgrade: the master serving now learns it
    // by its watch of the keeper (every KEEPER_WATCH_MS, 250 ms, lib/master/keeper.ts) and only
    // then shuts down; what reaches it before may be carried out.
    if (
      rec.phase === 'after' &&
      this.ending?.kind === 'SIGKILL started' &&
      this.upgrades > 0 &&
      rec.at - this.ending.at < 1000
    )
      rec.expect = 'none';
    if (rec.phase === 'after' || !op) return;
    switch (op.op) {
      case 'reload':
        if (op.broken) rec.expect = 'fails';
        else {
          rec.expect = 'accepted';
          this.reloadAt = rec.at;
        }
        break;
      case 'upgrade':
        if (!this.canUpgrade) rec.expect = 'refused';
        else if (op.broken) rec.expect = 'fails';
        else {
          rec.expect = 'accepted';
          this.upgradeAt = rec.at;
          this.upgrades++;
        }
        break;
      case 'scale':
        rec.expect = 'accepted';
        break;
      case 'ecv':
        rec.expect = 'accepted';
        this.ecv = op.enable;
        break;
      default:
        rec.expect = 'none';
    }
  }

  ended(kind: Ending['kind'], at: number): void {
    this.ending ??= { kind, at };
    // These kill the workers (requests in flight are cut), not only drain them.
    if (kind === 'cli stop' || kind === 'api stop' || kind === 'SIGINT x2') this.cutAt ??= at;
  }

  get masterKilled(): boolean {
    return this.ending?.kind.startsWith('SIGKILL') ?? false;
  }

  /** The workers the test killed or stopped. */
  get hurt(): number[] {
    return this.records.filter((r) => r.worker !== undefined).map((r) => r.worker!);
  }

  /**
   * A reload may fail, saying so, when the test killed (or stopped) one of its replacements
   * before it was up (docs/lifecycle.md: a replacement that exits stops the reload): does `message` say that?
   */
  failedByTest(message: string): boolean {
    return /fail/i.test(message) && this.hurt.some((pid) => message.includes(String(pid)));
  }

  /** Why a failure is allowed, or undefined when it is not. */
  allows(f: Failure): string | undefined {
    const cls = classify(f.error);
    const e = this.ending;
    if (e && this.masterKilled && f.t >= e.at) return 'a master was SIGKILLed';
    // A timeout is judged at the moment its request began: that is when it met what lost it.
    const at = cls === 'timeout' ? (f.started ?? f.t) : f.t;
    for (const w of this.windows) {
      if (at >= w.from && at <= w.to && (f.pid === undefined || f.pid === w.pid) && (w.cls ?? ['reset']).includes(cls))
        return w.why;
    }
    if (e && f.t >= e.at) {
      if (cls === 'refused') return 'refused after an ending began';
      if (this.cutAt !== undefined && f.t >= this.cutAt && cls === 'reset') return 'cut by a stop';
      // Without the addon the listeners close at once: what their queues held is reset (docs/lifecycle.md, What a shutdown serves and refuses).
      if (!this.config.native && cls === 'reset' && !f.served)
        return 'a queued connection reset by a shutdown without the addon';
      // A worker that dies or hangs during a shutdown is not replaced: what waited for it (its
      // slot's queue, or a round-robin hand-off) is reset when the shutdown stops waiting.
      const lost = this.windows.some((w) => w.pid !== undefined && w.to >= e.at - 2000);
      if (lost && cls === 'reset' && !f.served)
        return 'queued for a worker killed or stopped as the shutdown began (not replaced while draining)';
    }
    return undefined;
  }
}

/** Messages that say an operation was refused or cancelled because the service is ending. */
export const ENDING_WORDS = /shutting down|draining|stopping|stopped|cancel|no running master|exited|gone/i;

/** An invariant that did not hold: which, at which step, and what was seen. */
export interface Violation {
  invariant: string;
  step: string;
  detail: string;
}
