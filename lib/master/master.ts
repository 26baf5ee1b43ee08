import type { EventEmitter } from 'node:events';
import { EXIT_CONFIG, EXIT_CRASH_LOOP, EXIT_KILLED, EXIT_OK } from '../shared/exit-codes';
import type { RecycleReason } from '../shared/ipc';
import { inheritedChoice, oneSocket, serviceSockets, takeInherited, type Inherited } from '../listen/inherited';
import { NodeClusterListener } from '../listen/node-cluster';
import { pickPort } from '../listen/pick-port';
import { migrateNote, NodeReusePortListener, ReusePortListener } from '../listen/reuseport';
import { chooseStrategy, type ActiveStrategy, type Listener } from '../listen/strategy';
import type { Resolved } from '../shared/options';
import { fallbackNote, implementation, loadError, native } from '../shared/native';
import { assertPortsFree, resolveBindHost } from '../service/port-probe';
import { checkRuntime } from '../service/runtime-support';
import { Service, type Intent, type ServiceRole } from '../service/service';
import { StartError } from '../shared/start-error';
import {
  MASTER_SIGNALS,
  type ControlRequest,
  type ControlResults,
  type MasterState as State,
  type MasterStatus,
} from '../shared/protocol';
import { stickyProblem } from './sticky';
import type { WorkerProm } from '../monitor/prom-aggregate';
import { addDurations } from '../shared/durations';
import { orCantCreate } from '../shared/pids-dir';
import { askMaster } from '../client/control';
import { ControlServer } from './control-server';
import { DegradedWatch } from './degraded';
import { becomeKeeperRef, Keeper, takeKeeper, watchKeeper, type KeeperRef } from './keeper';
import { cancelled, decide, NEXT, refusal, type Operation } from './lifecycle';
import { quiesce } from '../service/quiesce';
import { Recycler } from './recycle';
import { SdNotify } from './sd-notify';
import { BOOT_FAILURE_LIMIT, Supervisor, type WorkerInfo } from './supervisor';
import { UpgradeChild, Upgrader, type Successor, type UpgradeResult } from './upgrade';

/** An operation asked of the master, and who asked: a signal (which), the control socket or the API. */
export type Request = Exclude<ControlRequest, { op: 'status' }> & {
  origin?: 'signal' | 'control' | 'api';
  sig?: NodeJS.Signals;
};

/** What each operation resolves with. */
type Result<R extends Request> = R['op'] extends 'upgrade' ? UpgradeResult : ControlResults[R['op']];

interface Queued {
  req: Request;
  resolve: (v: unknown) => void;
  reject: (e: Error) => void;
}

/** How the master ends: its workers drain (a shutdown, or a hand-over to a new master) or are killed. */
type How = 'drain' | 'kill';

interface Ending {
  how: How;
  code: number;
  /** A new master serves (an upgrade handed over): ECV stays, no filter on the shared sockets. */
  handedOver?: Successor;
  /** Why, when it is not a plain shutdown or stop: printed on stderr at the end (crash loop, fatal error). */
  reason?: string;
  /** Resolves when a drain turns into a kill (stop during a shutdown, a second SIGINT). */
  killNow: () => void;
  done: Promise<void>;
}

/** The most workers a master runs (options.ts's noWorkers range). */
const MAX_WORKERS = 1024;

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
  private state: State = 'idle';
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
  private ending: Ending | undefined;
  /** Rejects a start still under way when the master ends before it is up (crash loop). */
  private abortStart: ((e: Error) => void) | undefined;
  private readonly retired: MasterStatus['retired'] = { connections: 0, requests: 0 };
  /** The app socket came from systemd (socket activation), which keeps it after this master. */
  private socketHeld = false;
  /** The process that started the service, when an upgrade started this master (lib/master/keeper.ts). */
  private readonly keeperRef: KeeperRef | undefined;
  private stopWatch: () => void = () => {};
  /** A shutdown or stop asked for while booting, before the supervisor existed. */
  private early: How | undefined;
  /** This process keeps the master that replaced it (the first master, after an upgrade). */
  private keeper: Keeper | undefined;
  /** What the new master was given at fork (an upgrade), to tell it what changed meanwhile. */
  private gave: { size: number; ecv: boolean } | undefined;

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

  private to(next: State): void {
    if (!NEXT[this.state].includes(next)) throw new Error(`cluster2: internal: master state ${this.state} -> ${next}`);
    this.state = next;
    if (next === 'running') setImmediate(() => this.flush());
  }

  // ---- start ---------------------------------------------------------------------------

  /** Start; resolves once every worker is up. A failure is a StartError (exit code) with nothing left open. */
  async start(): Promise<void> {
    this.to('starting');
    try {
      await new Promise<void>((resolve, reject) => {
        this.abortStart = reject;
        this.boot().then(resolve, reject);
      });
    } catch (e) {
      this.abortStart = undefined;
      // Already ending (a crash loop): its end closes everything and hands the code over.
      if (!this.ending) this.abandon();
      throw e;
    }
    this.abortStart = undefined;
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
    const inh = takeInherited();
    this.socketHeld = inh?.source === 'systemd' && inh.app.length > 0;
    const upgrading = inh?.source === 'upgrade' ? new UpgradeChild() : undefined;
    const choice = inheritedChoice(chooseStrategy(o), inh);
    const sticky = stickyProblem(o, choice.name, { native, loadError });
    if (sticky) throw new StartError(sticky, EXIT_CONFIG);
    if (choice.note) process.stderr.write(`${choice.note}\n`);
    const host = await resolveBindHost(o.host);
    const fds = serviceSockets(o, inh);
    // An upgrade of a reuseport-node master hands over no socket: the new workers join the old ones' group.
    await assertPortsFree(o, host, {
      app: !!inh && (inh.app.length > 0 || upgrading !== undefined),
      mon: fds.monitor !== undefined,
    });
    const listener = (this.listener = await this.createListener(choice.name, host, inh));
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
    this.upgrader = this.upgraderOf();
    // A shutdown or stop asked for before the supervisor was there: the start ends here.
    if (this.early) return void this.end(this.early, EXIT_OK);
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
    this.to('running');
    this.sd.ready(this.statusLine(), this.keeperRef?.pid);
    this.sd.startWatchdog();
  }

  /** A start that failed: close what it opened, kill what it forked. */
  private abandon(): void {
    this.to('stopped');
    this.stopWatch();
    this.recycler?.close();
    this.sup?.end('kill');
    this.control?.close();
    this.listener?.close();
    this.service.close();
  }

  private async createListener(
    name: Exclude<ActiveStrategy, 'single'>,
    host: string,
    inh?: Inherited,
  ): Promise<Listener> {
    const o = this.o;
    if (name === 'reuseport')
      return new ReusePortListener(host, o.port, o.sticky === 'ip')
        .adopt(inh?.app ?? [])
        .open(inh?.size ?? o.noWorkers);
    if (name === 'reuseport-node') return new NodeReusePortListener(inh?.port || o.port || (await pickPort(host)));
    // The master owns the listening socket when it can (so an upgrade can hand it over).
    const socket = oneSocket(inh) ?? native?.listen(host, o.port, 511, false);
    const port =
      socket !== undefined && native ? native.localPort(socket) : inh?.port || o.port || (await pickPort(host));
    return new NodeClusterListener(name, port, socket);
  }

  private statusLine(): string {
    return `${this.sup.accepting().length} workers up, strategy ${this.strategy}, port ${this.port}`;
  }

  private wire(): void {
    const c = this.c;
    this.sup.on('forked', (w: WorkerInfo) => c.emit('forked', w.pid));
    this.sup.on('spare', (pid: number) => c.emit('spare', pid));
    this.sup.on('listening', (w: WorkerInfo, address: unknown) => c.emit('listening', w.pid, address));
    this.sup.on('died', (w: WorkerInfo, code: number | null, signal: string | null) => {
      this.retired.connections += w.stats.connections;
      this.retired.requests += w.stats.requests;
      this.retired.durations = addDurations(this.retired.durations, w.stats.durations);
      c.emit('died', w.pid, code, signal);
    });
    this.sup.on('warning', (message: string) => c.emit('warning', message));
    this.sup.on('recycled', (old: WorkerInfo, neo: WorkerInfo, reason: RecycleReason) =>
      c.emit('recycled', old.pid, neo.pid, reason),
    );
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
    const req: Request =
      i === 'grow' || i === 'shrink'
        ? { op: 'scale', delta: i === 'grow' ? 1 : -1 }
        : { op: i === 'shutdown' ? 'shutdown' : i === 'stop' ? 'stop' : i === 'reload' ? 'reload' : 'upgrade' };
    // A signal has nobody to answer: a refusal or a failure is a warning (on stderr too when the app does not listen).
    this.request({ ...req, origin: 'signal', sig }).catch((e: Error) => this.warn(e.message, true));
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
        return this.scale(req);
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
    const op = this.queue[0].req.op;
    const same = this.queue.filter((q) => q.req.op === op);
    this.queue = this.queue.filter((q) => q.req.op !== op);
    const last = same[same.length - 1].req;
    this.run(last).then(
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
    if (req.origin === 'signal' && req.sig) {
      try {
        process.kill(to, req.sig);
      } catch {
        /* it is gone: the keeper ends with it */
      }
      return Promise.resolve();
    }
    const { origin, sig, ...wire } = req;
    void origin;
    void sig;
    return askMaster(this.o.pids, to, wire as ControlRequest, 300_000);
  }

  /** Grow or shrink (signals: by one, never below one); resolves once exactly that many workers listen. */
  private scale(req: Extract<Request, { op: 'scale' }>): Promise<ControlResults['scale']> {
    const n = req.n ?? this.sup.size + (req.delta ?? 0);
    if (req.origin === 'signal' && n < 1) return Promise.resolve({ size: this.sup.size, workers: this.serving_() });
    if (!Number.isInteger(n) || n < 1 || n > MAX_WORKERS) {
      return Promise.reject(
        new RangeError(
          `cluster2: scale: the number of workers must be a whole number from 1 to ${MAX_WORKERS}; asked for ${n}`,
        ),
      );
    }
    this.sup.resize(n);
    return this.settled(n).then(() => ({ size: n, workers: this.serving_() }));
  }

  /** Resolves when exactly n workers run and all are up (removed ones have exited); rejects if the master ends. */
  private settled(n: number): Promise<void> {
    return new Promise((resolve, reject) => {
      const check = () => {
        if (this.ending) return done(new Error('cluster2: scale: the master is stopping'));
        if (this.sup.size !== n)
          return done(new Error(`cluster2: scale: the size changed to ${this.sup.size} meanwhile`));
        const ws = [...this.sup.workers.values()];
        if (ws.length === n && ws.every((w) => w.state === 'listening' && w.ready)) done();
      };
      const done = (e?: Error) => {
        this.sup.off('ready', check);
        this.sup.off('died', check);
        this.sup.off('halted', check);
        if (e) reject(e);
        else resolve();
      };
      this.sup.on('ready', check);
      this.sup.on('died', check);
      this.sup.on('halted', check);
      check();
    });
  }

  private serving_(): number[] {
    return this.sup.accepting().map((w) => w.pid);
  }

  /**
   * Replace every worker with one that loads the code afresh, reloadConcurrency at a time.
   * The first replacement that fails (throws, exits, or is not up within listenTimeout)
   * stops the reload; the old workers keep serving. Emits `reloaded(pairs)` or
   * `reloadFailed(message)`.
   */
  private startReload(): Promise<ControlResults['reload']> {
    this.to('reloading');
    this.sd.reloading();
    const pairs: [number, number][] = [];
    const onRecycled = (old: WorkerInfo, neo: WorkerInfo, reason: RecycleReason) => {
      if (reason === 'reload') pairs.push([old.pid, neo.pid]);
    };
    this.sup.on('recycled', onRecycled);
    const slots = this.sup.accepting().map((w) => w.slot);
    return this.recycler
      .reload(slots)
      .then(
        () => {
          this.c.emit('reloaded', pairs);
          return { workers: this.serving_() };
        },
        (e: Error) => {
          const error = new Error(
            this.ending
              ? 'cluster2: reload cancelled: the master is shutting down'
              : `cluster2: reload failed, the old workers keep serving: ${e.message}`,
          );
          this.c.emit('reloadFailed', error.message);
          throw error;
        },
      )
      .finally(() => {
        this.sup.off('recycled', onRecycled);
        if (this.state !== 'reloading') return;
        this.to('running');
        this.sd.ready(this.statusLine(), this.keeperRef?.pid);
      });
  }

  private startUpgrade(node?: string): Promise<UpgradeResult> {
    const p = this.upgrader.upgrade(node);
    if (!this.upgrader.busy) return p; // refused: the reason is the rejection
    this.gave = { size: this.sup.size, ecv: this.ecv.enabled };
    this.to('upgrading');
    return p.then(
      (s) => {
        if (this.state === 'upgrading') this.handOver(s);
        return { from: s.from, to: s.to, node: s.node };
      },
      (e: Error) => {
        if (this.state === 'upgrading') this.to('running');
        throw e;
      },
    );
  }

  private upgraderOf(): Upgrader {
    const master = {
      handoff: () => {
        const fds = this.service.listeningFds();
        return {
          app: this.listener!.handoff?.() ?? [],
          reusePort: this.strategy === 'reuseport',
          port: this.port,
          monitor: fds.monitor,
          monPort: this.o.monPort || undefined,
          metrics: fds.metrics,
          metricsPort: this.o.metrics?.port || undefined,
          size: this.sup.size === this.o.noWorkers ? undefined : this.sup.size,
          ecv: { enabled: this.ecv.enabled, since: this.ecv.since },
        };
      },
      refusal: () => {
        // round-robin or shared without the addon: node:cluster bound the port, there is no socket to hand over.
        if (this.listener!.handoff?.().length === 0)
          return (
            `strategy ${this.strategy} hands its listening socket over only with the native addon ` +
            `(${implementation} in use)`
          );
        return null;
      },
      keeper: () => this.keeperRef ?? becomeKeeperRef(),
    };
    return new Upgrader(master, this.o.listenTimeout + 30_000, {
      upgrading: (pid, node) => this.c.emit('upgrading', pid, node),
      upgraded: (r) => {
        this.sd.send(`STATUS=upgraded: master ${r.to} serves, master ${r.from} drains`);
        this.c.emit('upgraded', r.from, r.to);
      },
      failed: (message) => this.c.emit('upgradeFailed', message),
    });
  }

  /**
   * The new master serves: control clients no longer find this one; what was queued and
   * what changed since it was forked (worker count, ECV) go to it; this master's workers
   * drain, ECV unchanged. Then this process keeps the new master, or exits (lib/master/keeper.ts).
   */
  private handOver(s: Successor): void {
    this.service.unpublish();
    this.service.closeServers();
    this.control?.close();
    const changed: Request[] = [];
    if (this.gave && this.sup.size !== this.gave.size) changed.push({ op: 'scale', n: this.sup.size });
    if (this.gave && this.ecv.enabled !== this.gave.ecv) changed.push({ op: 'ecv', enabled: this.ecv.enabled });
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
   * The one way out. 'drain': ECV DISABLED (unless a new master serves now:
   * `handedOver`), drainDelay, the accept queues emptied into the workers,
   * every worker drains; exit 0, or 1 when some had to be killed at
   * gracefulTimeout. 'kill': every worker killed at once; exit `code`. A kill
   * asked for during a drain cuts it short; anything else asked for while
   * ending joins the ending under way. A reload under way is cancelled, an
   * upgrade under way too (its new master ends the same way), and queued
   * operations are refused.
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
    if (!this.sup) {
      // Still booting: the start ends as soon as the supervisor is there (boot()), or fails first.
      this.early = how === 'kill' || !this.early ? how : this.early;
      return new Promise(() => {});
    }
    const upgrading = this.state === 'upgrading' && !handedOver;
    this.to(handedOver ? 'handing-over' : how === 'drain' ? 'draining' : 'stopped');
    this.stopWatch();
    this.sup.halt();
    this.recycler.close();
    this.sd.stopWatchdog();
    if (!handedOver) this.sd.stopping();
    for (const q of this.queue.splice(0)) q.reject(new Error(cancelled(q.req.op as Operation)));
    let killNow!: () => void;
    const killed = new Promise<void>((resolve) => (killNow = resolve));
    const ending: Ending = { how, code, reason, handedOver, killNow, done: Promise.resolve() };
    this.ending = ending;
    // The new master being started ends the same way: it must never serve alone on sockets this one closes.
    const successorGone = upgrading ? this.upgrader.cancel(how, 'the master is shutting down') : Promise.resolve();
    ending.done = (async () => {
      if (how === 'drain') await Promise.race([this.drainOut(ending), killed]);
      if (ending.how === 'kill') {
        if (this.state === 'draining') this.to('stopped');
        this.sup.end('kill');
      }
      await this.sup.empty();
      await successorGone;
      this.finish(ending);
    })();
    return ending.done;
  }

  private async drainOut(e: Ending): Promise<void> {
    const o = this.o;
    const listener = this.listener!;
    const handedOver = e.handedOver !== undefined;
    if (!handedOver) this.setEcv(false);
    this.sup.broadcast({ c2: 'stopping' });
    if (o.drainDelay && !handedOver) await new Promise((r) => setTimeout(r, o.drainDelay));
    // The socket outlives this master (a new master, or systemd, holds it): stop accepting
    // here first, so what the kernel queues waits for the next one instead of being reset.
    const settle = handedOver || this.socketHeld ? (listener.stopAccepting?.() ?? 0) : 0;
    if (settle) await new Promise((r) => setTimeout(r, settle));
    const cut = setTimeout(() => {
      if (this.sup.workers.size > 0 && e.how === 'drain') e.code = EXIT_KILLED;
      this.sup.end('kill');
    }, o.gracefulTimeout);
    // Every connection the kernel already accepted reaches a worker first (see quiesce).
    // Not when the sockets outlive this master: the filter would stay on them for the next one.
    if (!handedOver && !this.socketHeld) {
      await quiesce(this.port, Date.now() + o.gracefulTimeout / 2, {
        accepting: () => this.sup.workers.size > 0,
        warn: (m) => this.c.emit('warning', m),
      });
    }
    this.sup.end('drain');
    // The workers hold their own copies of the sockets until they close them:
    // from now on the kernel refuses new connections instead of queueing them.
    listener.close();
    await this.sup.empty();
    clearTimeout(cut);
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
      this.keeper = new Keeper(s.to, s.child, {
        signal: (sig) => this.c.emit(sig),
        keeps: (pid) => this.c.emit('keeping', pid),
        exit: (code) => this.service.end(code),
      });
      return;
    }
    if (e.reason) {
      const abort = this.abortStart;
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
    if (loud && this.c.listenerCount('warning') <= this.service.ownListeners('warning')) this.stderr(message);
    this.c.emit('warning', message);
  }

  private stderr(message: string): void {
    try {
      process.stderr.write(`${message}\n`);
    } catch {
      /* stderr gone */
    }
  }

  // ---- the API -------------------------------------------------------------------------

  /** Graceful: ECV DISABLED, drainDelay, drain every worker, exit 0 (1 if some had to be killed). */
  shutdown(): Promise<void> {
    return this.request({ op: 'shutdown', origin: 'api' }).then(() => {});
  }

  /** Immediate: kill every worker, exit 0. During a shutdown: its drain is cut short. */
  stop(): Promise<void> {
    return this.request({ op: 'stop', origin: 'api' }).then(() => {});
  }

  reload(): Promise<void> {
    return this.request({ op: 'reload', origin: 'api' }).then(() => {});
  }

  /** Replace this master with a new one (`cluster2 upgrade`, SIGUSR2): lib/master/upgrade.ts. */
  upgrade(node?: string): Promise<UpgradeResult> {
    return this.request({ op: 'upgrade', node, origin: 'api' }) as Promise<UpgradeResult>;
  }

  resize(n: number): Promise<void> {
    if (!Number.isInteger(n) || n < 1)
      throw new RangeError(`cluster2: resize(${n}): the number of workers must be a whole number >= 1`);
    return this.request({ op: 'scale', n, origin: 'api' }).then(() => {});
  }

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
    const sup = this.sup;
    return {
      pid: process.pid,
      state: this.state === 'running' && !this.degraded.serving() ? 'degraded' : this.state,
      strategy: this.strategy,
      implementation,
      port: this.port,
      started: this.service.started,
      size: sup.size,
      restarts: sup.restarts,
      recycles: { ...sup.recycles },
      exits: sup.exits,
      ecv: { enabled: this.ecv.enabled, since: this.ecv.since },
      retired: { ...this.retired },
      workers: this.workers().map((w) => ({
        pid: w.pid,
        slot: w.slot,
        state: w.state,
        started: w.started,
        listened: w.listened,
        restarts: sup.slotRestarts[w.slot] ?? 0,
        ...w.stats,
      })),
      spare: sup.spares.status(),
      events: this.service.eventLog(),
    };
  }
}
