import type { EventEmitter } from 'node:events';
import { EXIT_CRASH_LOOP, EXIT_OK } from '../shared/exit-codes';
import { migrateNote } from '../listen/reuseport';
import type { ActiveStrategy, Listener } from '../listen/strategy';
import type { Resolved } from '../shared/options';
import { fallbackNote } from '../shared/native';
import { checkRuntime } from '../service/runtime-support';
import { Service, type Intent, type ServiceRole } from '../service/service';
import { StartError } from '../shared/start-error';
import { MASTER_SIGNALS, type ControlResults, type MasterState as State, type MasterStatus } from '../shared/protocol';
import type { WorkerProm } from '../monitor/prom-aggregate';
import { orCantCreate } from '../shared/pids-dir';
import { ControlServer } from './control-server';
import { DegradedWatch } from './degraded';
import { becomeKeeperRef, takeKeeper, watchKeeper, type Keeper, type KeeperRef } from './keeper';
import { keepSuccessor, passTo } from './successor';
import {
  cancelled,
  decide,
  NEXT,
  refusal,
  requestOf,
  takeBatch,
  type Ending,
  type How,
  type Life,
  type Operation,
  type Queued,
  type Request,
  type Result,
} from './lifecycle';
import { drainOut } from './drain-out';
import { openListener } from './open-listener';
import { Recycler } from './recycle';
import { statusOf } from './status';
import { upgraderFor } from './upgrader-for';
import { forwardWorkerEvents } from './worker-events';
import { scale, serving as servingPids } from './scale';
import { SdNotify } from './sd-notify';
import { BOOT_FAILURE_LIMIT, Supervisor, type WorkerInfo } from './supervisor';
import { Upgrader, type Successor, type UpgradeResult } from './upgrade';

/**
 * The master, and its lifecycle's one owner. Its state (lib/shared/protocol.ts
 * MasterState) changes only through to(), along lib/master/lifecycle.ts NEXT;
 * every operation (a signal's, the control socket's, the API's) goes through
 * request(), which does what lib/master/lifecycle.ts DECIDE says for the state:
 * at once, queued until running again, passed to the master that replaced this
 * one, refused, or the ending. The supervisor owns the workers, the recycler
 * the replacements, the upgrader the new master; they report here, and every
 * way out (shutdown, stop, crash loop, a failed start, a hand-over) goes
 * through end().
 */
export class Master implements ServiceRole {
  strategy: ActiveStrategy | undefined;
  port = 0;
  private life: Life = { state: 'idle' };
  private readonly service: Service;
  private sup!: Supervisor;
  private recycler!: Recycler;
  private listener?: Listener;
  private control?: ControlServer;
  private degraded!: DegradedWatch;
  private upgrader!: Upgrader;
  private readonly sd = new SdNotify();
  /** Operations waiting for the master to run again (lifecycle.ts 'queue'). */
  private queue: Queued[] = [];
  private readonly retired: MasterStatus['retired'] = { connections: 0, requests: 0 };
  /** The app socket came from systemd (socket activation), which keeps it after this master. */
  private socketHeld = false;
  /** The process that started the service, when an upgrade started this master (lib/master/keeper.ts). */
  private readonly keeperRef: KeeperRef | undefined;
  private stopWatch: () => void = () => {};
  /** This process keeps the master that replaced it (the first master, after an upgrade). */
  private keeper: Keeper | undefined;

  constructor(
    private readonly c: EventEmitter,
    private readonly o: Resolved,
    private readonly exit: (code: number) => void,
  ) {
    this.service = new Service(c, o, exit);
    this.keeperRef = takeKeeper();
  }

  get ecv() {
    return this.service.ecv;
  }

  /** The master it keeps, once an upgrade replaced this process's master (lib/master/keeper.ts). */
  get keeps(): number | undefined {
    return this.keeper?.pid;
  }

  private get state(): State {
    return this.life.state;
  }

  /** The ending under way, if any (its how and code). */
  private get ending(): Ending | undefined {
    return 'ending' in this.life ? this.life.ending : undefined;
  }

  /** The one transition function: along lib/master/lifecycle.ts NEXT, with the new state's data. */
  private to(next: Life): void {
    if (!NEXT[this.state].includes(next.state))
      throw new Error(`cluster2: internal: master state ${this.state} -> ${next.state}`);
    this.life = next;
    if (next.state === 'running') setImmediate(() => this.flush());
  }

  // ---- start ---------------------------------------------------------------------------

  /** Start; resolves once every worker is up. A failure is a StartError (exit code) with nothing left open. */
  async start(): Promise<void> {
    try {
      await new Promise<void>((resolve, reject) => {
        this.to({ state: 'starting', abort: reject });
        this.boot().then(resolve, reject);
      });
    } catch (e) {
      // Already ending (a crash loop): its end closes everything and hands the code over.
      if (this.ending) this.ending.abortStart = undefined;
      else this.abandon();
      throw e;
    }
    if (this.ending) this.ending.abortStart = undefined;
  }

  private async boot(): Promise<void> {
    const o = this.o;
    // Deno is refused (exit 78) before anything is created; on Bun, one line says what differs
    // once the start can no longer fail before forking (a failure's line stays the only one).
    const runtimeNote = checkRuntime();
    this.service.prepare();
    // Signals are the master's from the start: one that comes before the workers is queued or ends the start.
    this.service.onSignals(MASTER_SIGNALS, this);
    const fallback = fallbackNote();
    if (fallback) process.stderr.write(`${fallback}\n`);
    const { inh, upgrading, fds, listener } = await openListener(o);
    this.listener = listener;
    this.socketHeld = inh?.source === 'systemd' && inh.app.length > 0;
    const control = (this.control = new ControlServer(this, this.c, o.pids));
    await orCantCreate(() => control.listen());
    // A master started by an upgrade is found by control clients once it serves (publish()).
    if (!upgrading) this.service.writePidFiles(!this.keeperRef);
    this.strategy = listener.name;
    this.port = listener.port;
    this.sup = new Supervisor(o, listener);
    if (inh?.ecv) this.service.ecv.set(inh.ecv.enabled, inh.ecv.since);
    this.sup.ecv = { enabled: this.ecv.enabled, since: this.ecv.since };
    this.recycler = new Recycler(this.sup, o, (e) =>
      this.c.emit('warning', `cluster2: a recycle failed: ${e.message}`),
    );
    this.wire();
    this.degraded = new DegradedWatch(
      this.sup,
      () => this.state === 'running' || this.state === 'reloading',
      (m) => this.c.emit('warning', m),
    );
    await this.service.serve(this, fds);
    this.upgrader = upgraderFor({
      o,
      listener,
      sup: this.sup,
      service: this.service,
      keeper: () => this.keeperRef ?? becomeKeeperRef(),
      upgraded: (r) => this.sd.send(`STATUS=upgraded: master ${r.to} serves, master ${r.from} drains`),
      c: this.c,
    });
    // A shutdown or stop asked for before the supervisor was there: the start ends here.
    if (this.life.state === 'starting' && this.life.early) return void this.end(this.life.early, EXIT_OK);
    if (this.keeperRef) {
      const k = this.keeperRef.pid;
      this.stopWatch = watchKeeper(this.keeperRef, () => {
        this.warn(`cluster2: the process that started the service (pid ${k}) is gone; shutting down`, true);
        void this.request({ op: 'shutdown', origin: 'signal' });
      });
    }
    if (runtimeNote) process.stderr.write(`${runtimeNote}\n`);
    this.c.emit('strategy', this.strategy, this.port);
    if (this.strategy === 'reuseport-node') this.c.emit('warning', migrateNote());
    await this.sup.start(inh?.size ?? o.noWorkers);
    if (this.state !== 'starting') return; // a shutdown or stop came meanwhile
    if (upgrading) {
      // Serving: control clients find this master now; then the old one hands over.
      this.service.writePidFiles(false);
      await upgrading.ready();
      if (this.state !== 'starting') return;
    }
    this.to({ state: 'running' });
    this.sd.ready(this.statusLine(), this.keeperRef?.pid);
    this.sd.startWatchdog();
  }

  /** A start that failed: close what it opened, kill what it forked. */
  private abandon(): void {
    this.to({ state: 'stopped' });
    this.stopWatch();
    this.recycler?.close();
    this.sup?.end('kill');
    this.control?.close();
    this.listener?.close();
    this.service.close();
  }

  private statusLine(): string {
    return `${this.sup.accepting().length} workers up, strategy ${this.strategy}, port ${this.port}`;
  }

  private wire(): void {
    forwardWorkerEvents(this.sup, this.c, this.retired);
    // The ECV control route on the app port, answered by a worker.
    this.sup.on('ecv', (enabled: boolean) => {
      this.request({ op: 'ecv', enabled, origin: 'control' }).catch((e: Error) => this.warn(e.message));
    });
    this.sup.on('crashLoop', (last: string) => {
      const reason =
        `cluster2: workers died ${BOOT_FAILURE_LIMIT} times in a row before listening (last: ${last}); ` +
        `stopping with exit code ${EXIT_CRASH_LOOP}`;
      void this.end('kill', EXIT_CRASH_LOOP, reason);
    });
  }

  // ---- operations ----------------------------------------------------------------------

  /** A signal's intent (lib/shared/service.ts), from the event loop. */
  intent(i: Intent, sig?: NodeJS.Signals): void {
    // A signal has nobody to answer: a refusal or a failure is a warning (on stderr too when the app does not listen).
    this.request(requestOf(i, sig)).catch((e: Error) => this.warn(e.message, true));
  }

  /**
   * Ask the master for an operation; resolves with its outcome. What happens depends on the
   * state (lib/master/lifecycle.ts DECIDE).
   */
  request<R extends Request>(req: R): Promise<Result<R>> {
    const d = decide(this.state, req.op as Operation);
    switch (d) {
      case 'now':
        return this.run(req) as Promise<Result<R>>;
      case 'queue':
        return new Promise((resolve, reject) =>
          this.queue.push({ req, resolve: resolve as (v: unknown) => void, reject }),
        );
      case 'pass':
        return this.pass(req) as Promise<Result<R>>;
      case 'end':
        return this.end(req.op === 'stop' ? 'kill' : 'drain', EXIT_OK) as Promise<unknown> as Promise<Result<R>>;
      case 'join':
        return (this.ending?.done ?? Promise.resolve()) as Promise<unknown> as Promise<Result<R>>;
      default:
        return Promise.reject(new Error(refusal(this.state, req.op as Operation)));
    }
  }

  private run(req: Request): Promise<unknown> {
    switch (req.op) {
      case 'reload':
        return this.startReload();
      case 'upgrade':
        return this.startUpgrade(req.node);
      case 'scale':
        return scale(this.sup, req, () => this.ending !== undefined);
      case 'ecv':
        if (!this.setEcv(req.enabled))
          return Promise.reject(new Error('cluster2: ecv: the master is shutting down; ECV stays disabled'));
        return Promise.resolve({ enabled: this.ecv.enabled, since: this.ecv.since });
      default:
        return Promise.reject(new Error('unreachable'));
    }
  }

  /** The master runs again: what was queued, in order; reloads (and upgrades) asked meanwhile make one. */
  private flush(): void {
    if (this.state !== 'running' || this.queue.length === 0) return;
    const same = takeBatch(this.queue);
    this.run(same[same.length - 1].req).then(
      (v) => same.forEach((q) => q.resolve(v)),
      (e: Error) => same.forEach((q) => q.reject(e)),
    );
  }

  /** Pass an operation to the master that replaced this one: a signal as that signal, a request over its socket. */
  private pass(req: Request): Promise<unknown> {
    const to = this.keeper?.pid ?? this.ending?.handedOver?.to;
    if (to === undefined) return Promise.reject(new Error(refusal(this.state, req.op as Operation)));
    // A stop cuts this master's own drain short too.
    if (req.op === 'stop' && this.ending) void this.end('kill', this.ending.code);
    return passTo(to, req, this.o.pids);
  }

  /**
   * Replace every worker with one that loads the code afresh, reloadConcurrency at a time.
   * The first replacement that fails (throws, exits, or is not up within listenTimeout)
   * stops the reload; the old workers keep serving. Emits `reloaded(pairs)` or
   * `reloadFailed(message)`.
   */
  private startReload(): Promise<ControlResults['reload']> {
    this.sd.reloading();
    const done = this.recycler.reloadAll().then(
      (pairs) => {
        this.c.emit('reloaded', pairs);
        return { workers: servingPids(this.sup) };
      },
      (e: Error) => {
        const why = this.ending
          ? 'cancelled: the master is shutting down'
          : `failed, the old workers keep serving: ${e.message}`;
        this.c.emit('reloadFailed', `cluster2: reload ${why}`);
        throw new Error(`cluster2: reload ${why}`);
      },
    );
    this.to({ state: 'reloading', done });
    void done.then(this.reloaded, this.reloaded);
    return done;
  }

  /** A reload ended (done or failed): running again, unless the master ends meanwhile. */
  private readonly reloaded = () => {
    if (this.state !== 'reloading') return;
    this.to({ state: 'running' });
    this.sd.ready(this.statusLine(), this.keeperRef?.pid);
  };

  private startUpgrade(node?: string): Promise<UpgradeResult> {
    const p = this.upgrader.upgrade(node);
    if (!this.upgrader.busy) return p; // refused: the reason is the rejection
    const done = p.then(
      (s) => {
        if (this.life.state === 'upgrading' && this.life.done === done) this.handOver(s, this.life.gave);
        return { from: s.from, to: s.to, node: s.node };
      },
      (e: Error) => {
        if (this.life.state === 'upgrading' && this.life.done === done) this.to({ state: 'running' });
        throw e;
      },
    );
    // What the new master was given at fork, to tell it what changed meanwhile (handOver).
    this.to({ state: 'upgrading', gave: { size: this.sup.size, ecv: this.ecv.enabled }, done });
    return done;
  }

  /**
   * The new master serves: control clients no longer find this one; what was queued and
   * what changed since it was forked (worker count, ECV) go to it; this master's workers
   * drain, ECV unchanged. Then this process keeps the new master, or exits (lib/master/keeper.ts).
   */
  private handOver(s: Successor, gave: { size: number; ecv: boolean }): void {
    this.service.unpublish();
    this.service.closeServers();
    this.control?.close();
    const changed: Request[] = [];
    if (this.sup.size !== gave.size) changed.push({ op: 'scale', n: this.sup.size });
    if (this.ecv.enabled !== gave.ecv) changed.push({ op: 'ecv', enabled: this.ecv.enabled });
    const queued = this.queue.splice(0);
    void this.end('drain', EXIT_OK, undefined, s);
    for (const r of changed) this.pass(r).catch((e: Error) => this.warn(e.message));
    for (const q of queued) this.pass({ ...q.req, origin: 'control' }).then(q.resolve, q.reject);
  }

  /** ECV on or off in every worker, including those forked later; enabling is refused (false) while ending. */
  setEcv(enabled: boolean): boolean {
    const ok = this.service.setEcv(enabled, this.ending !== undefined, (e) =>
      this.sup.broadcast({ c2: 'ecv', enabled: e, since: this.ecv.since }),
    );
    this.sup.ecv = { enabled: this.ecv.enabled, since: this.ecv.since };
    // A worker that asked waits for the answer: the state as it stays.
    if (!ok) this.sup.broadcast({ c2: 'ecv', enabled: this.ecv.enabled, since: this.ecv.since });
    return ok;
  }

  // ---- the way out ---------------------------------------------------------------------

  /**
   * The one way out: 'drain' (lib/master/drain-out.ts) or 'kill' (every worker killed, exit
   * `code`). A kill asked for during a drain cuts it short; anything else asked meanwhile joins
   * it. A reload under way is cancelled, an upgrade too (its new master ends the same way), and
   * queued operations are refused.
   */
  private end(how: How, code: number, reason?: string, handedOver?: Successor): Promise<void> {
    const e = this.ending;
    if (e) {
      if (how === 'kill' && e.how === 'drain') {
        Object.assign(e, { how, code: e.handedOver ? e.code : code, reason });
        e.killNow();
      }
      return e.done;
    }
    const life = this.life;
    if (!this.sup) {
      // Still booting: the start ends as soon as the supervisor is there (boot()), or fails first.
      if (life.state === 'starting') life.early = how === 'kill' || !life.early ? how : life.early;
      return new Promise(() => {});
    }
    const upgrading = life.state === 'upgrading' && !handedOver;
    let killNow!: () => void;
    const killed = new Promise<void>((resolve) => (killNow = resolve));
    const abortStart = life.state === 'starting' ? life.abort : undefined;
    const ending: Ending = { how, code, reason, handedOver, abortStart, killNow, done: Promise.resolve() };
    this.to({ state: handedOver ? 'handing-over' : how === 'drain' ? 'draining' : 'stopped', ending });
    this.stopWatch();
    this.sup.halt();
    this.recycler.close();
    this.sd.stopWatchdog();
    if (!handedOver) this.sd.stopping();
    for (const q of this.queue.splice(0)) q.reject(new Error(cancelled(q.req.op as Operation)));
    // The new master being started ends the same way: it must never serve alone on sockets this one closes.
    const successorGone = upgrading ? this.upgrader.cancel(how, 'the master is shutting down') : Promise.resolve();
    ending.done = (async () => {
      if (how === 'drain') {
        const out = {
          o: this.o,
          sup: this.sup,
          listener: this.listener!,
          port: this.port,
          socketHeld: this.socketHeld,
        };
        const warn = (m: string) => this.c.emit('warning', m);
        await Promise.race([drainOut(out, ending, () => this.setEcv(false), warn), killed]);
      }
      if (ending.how === 'kill') {
        if (this.state === 'draining') this.to({ state: 'stopped', ending });
        this.sup.end('kill');
      }
      await this.sup.empty();
      await successorGone;
      this.finish(ending);
    })();
    return ending.done;
  }

  /**
   * Every worker gone: close the rest, then exit with the ending's code (a start under way
   * fails with it), or, after a hand-over, keep the new master (lib/master/keeper.ts).
   */
  private finish(e: Ending): void {
    this.listener?.close();
    this.control?.close();
    if (e.handedOver) {
      const s = e.handedOver;
      this.c.emit('retired', process.pid, s.to);
      // A master below a keeper that adopts orphans leaves; the first master (or one whose keeper cannot adopt) stays.
      if (this.keeperRef?.reaps) return this.service.end(e.code);
      this.service.close(true);
      this.keeper = keepSuccessor(s, this.c, (code) => this.service.end(code));
      return;
    }
    if (e.reason) {
      const abort = e.abortStart;
      if (abort) {
        this.service.close();
        return abort(new StartError(e.reason, e.code));
      }
      this.warn(e.reason, true);
    }
    this.service.end(e.code);
  }

  /**
   * A warning event; `loud`: also on stderr when nobody but cluster2 itself listens
   * (an operator's signal that was refused or failed must not vanish).
   */
  private warn(message: string, loud = false): void {
    if (loud && this.c.listenerCount('warning') <= this.service.ownListeners('warning'))
      process.stderr.write(`${message}\n`); // a reader gone: guardStdio (lib/service/service.ts prepare)
    this.c.emit('warning', message);
  }

  // ---- for the Cluster (lib/cluster.ts), which asks for operations through request() -----

  workers(): WorkerInfo[] {
    return this.sup ? [...this.sup.workers.values()] : [];
  }

  serving(): boolean {
    return this.degraded.serving();
  }

  appTls(): boolean {
    return this.workers().some((w) => w.tls);
  }

  appMetrics(): WorkerProm[] {
    return this.workers().flatMap((w) => (w.prom ? [{ slot: w.slot, metrics: w.prom }] : []));
  }

  status(): MasterStatus {
    return statusOf({
      state: this.state === 'running' && !this.degraded.serving() ? 'degraded' : this.state,
      strategy: this.strategy,
      port: this.port,
      sup: this.sup,
      service: this.service,
      retired: this.retired,
    });
  }
}
