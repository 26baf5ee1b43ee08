import type { EventEmitter } from 'node:events';
import { EXIT_CONFIG, EXIT_CRASH_LOOP, EXIT_KILLED, EXIT_OK } from '../shared/exit-codes';
import type { RecycleReason } from '../shared/ipc';
import { inheritedChoice, monitorSocket, oneSocket, takeInherited, type Inherited } from '../listen/inherited';
import { NodeClusterListener } from '../listen/node-cluster';
import { pickPort } from '../listen/pick-port';
import { migrateNote, NodeReusePortListener, ReusePortListener } from '../listen/reuseport';
import { chooseStrategy, type ActiveStrategy, type Listener } from '../listen/strategy';
import type { Resolved } from '../shared/options';
import { fallbackNote, implementation, loadError, native } from '../shared/native';
import { assertPortsFree, resolveBindHost } from '../shared/port-probe';
import { checkRuntime } from '../shared/runtime-support';
import { Service, type Intent, type ServiceRole } from '../shared/service';
import { StartError } from '../shared/start-error';
import { MASTER_SIGNALS, type MasterState as State, type MasterStatus } from '../shared/protocol';
import { stickyProblem } from '../shared/sticky';
import { addDurations } from '../worker/durations';
import { orCantCreate } from '../shared/pid-trust';
import { ControlServer } from './control-server';
import { DegradedWatch } from './degraded';
import { quiesce } from './quiesce';
import { Recycler } from './recycle';
import { SdNotify } from './sd-notify';
import { BOOT_FAILURE_LIMIT, Supervisor, type WorkerInfo } from './supervisor';
import { UpgradeChild, Upgrader, type UpgradeResult } from './upgrade';

/**
 * The master's state machine: the only changes there are. Every change goes
 * through to(), which refuses any other (a bug, not a user error).
 */
const NEXT: Record<State, readonly State[]> = {
  idle: ['starting'],
  starting: ['running', 'draining', 'stopped'],
  running: ['reloading', 'upgrading', 'draining', 'stopped'],
  reloading: ['running', 'draining', 'stopped'],
  upgrading: ['running', 'draining', 'stopped'],
  draining: ['stopped'],
  stopped: [],
};

/** How the master ends: its workers drain (a shutdown) or are killed (stop, crash loop, a fatal error). */
type How = 'drain' | 'kill';

interface Ending {
  how: How;
  code: number;
  /** Why, when it is not a plain shutdown or stop: printed on stderr at the end (crash loop, fatal error). */
  reason?: string;
  /** Resolves when a drain turns into a kill (stop during a shutdown, a second SIGINT). */
  killNow: () => void;
  done: Promise<void>;
}

/**
 * The master: one state machine (lib/shared/protocol.ts MasterState) owned by this
 * object. Signals and control requests only ask (start, reload, upgrade,
 * resize, shutdown, stop); the supervisor owns the workers; every way out
 * (shutdown, stop, crash loop, a failed start) goes through end().
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
  /** The reload under way (a reload asked for meanwhile joins it). */
  private reloading: Promise<void> | undefined;
  private ending: Ending | undefined;
  /** Rejects a start still under way when the master ends before it is up (crash loop). */
  private abortStart: ((e: Error) => void) | undefined;
  private readonly retired: MasterStatus['retired'] = { connections: 0, requests: 0 };
  /** The app socket came from systemd (socket activation), which keeps it after this master. */
  private socketHeld = false;

  constructor(
    private readonly c: EventEmitter,
    private readonly o: Resolved,
    exit: (code: number) => void,
  ) {
    this.service = new Service(c, o, exit);
  }

  get ecv() {
    return this.service.ecv;
  }

  private to(next: State): void {
    if (!NEXT[this.state].includes(next)) throw new Error(`cluster2: internal: master state ${this.state} -> ${next}`);
    this.state = next;
  }

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
    const monFd = monitorSocket(o.monPort, inh);
    // An upgrade of a reuseport-node master hands over no socket: the new workers join the old ones' group.
    await assertPortsFree(o, host, {
      app: !!inh && (inh.app.length > 0 || upgrading !== undefined),
      mon: monFd !== undefined,
    });
    const listener = (this.listener = await this.createListener(choice.name, host, inh));
    const control = (this.control = new ControlServer(this, this.c, o.pids));
    await orCantCreate(() => control.listen());
    this.service.writePidFiles();
    this.strategy = listener.name;
    this.port = listener.port;
    this.sup = new Supervisor(o, listener);
    this.sup.ecv = this.ecv;
    this.recycler = new Recycler(this.sup, o, (e) =>
      this.c.emit('warning', `cluster2: a recycle failed: ${e.message}`),
    );
    this.wire();
    this.degraded = new DegradedWatch(
      this.sup,
      () => this.state === 'running' || this.state === 'reloading',
      (m) => this.c.emit('warning', m),
    );
    await this.service.serve(this, monFd);
    this.upgrader = this.upgraderOf();
    this.service.onSignals(MASTER_SIGNALS, this);
    if (runtimeNote) process.stderr.write(`${runtimeNote}\n`);
    this.c.emit('strategy', this.strategy, this.port);
    if (this.strategy === 'reuseport-node') this.c.emit('warning', migrateNote());
    await this.sup.start(o.noWorkers);
    if (this.state !== 'starting') return; // a shutdown or stop came meanwhile
    this.to('running');
    // An upgrade's new master: the old one tells systemd MAINPID once it hands over.
    if (upgrading) await upgrading.ready();
    else this.sd.ready(this.statusLine());
    if ((this.state as State) === 'running') this.sd.startWatchdog();
  }

  /** A start that failed: close what it opened, kill what it forked. */
  private abandon(): void {
    this.state = 'stopped';
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
      return new ReusePortListener(host, o.port, o.sticky === 'ip').adopt(inh?.app ?? []).open(o.noWorkers);
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

  /** Replace this master with a new one (`cluster2 upgrade`, SIGUSR2): lib/master/upgrade.ts. */
  upgrade(node?: string): Promise<UpgradeResult> {
    const p = this.upgrader.upgrade(node);
    if (this.upgrader.busy && this.state === 'running') {
      this.to('upgrading');
      p.catch(() => {
        if (this.state === 'upgrading') this.to('running');
      });
    }
    return p;
  }

  private upgraderOf(): Upgrader {
    const master = {
      handoff: () => ({
        app: this.listener!.handoff?.() ?? [],
        reusePort: this.strategy === 'reuseport',
        port: this.port,
        monitor: this.service.monitorFd(),
        monPort: this.o.monPort || undefined,
      }),
      retire: () => void this.end('drain', EXIT_OK, undefined, true),
      refusal: () => {
        if (this.state !== 'running') return `the master is ${this.state}`;
        // round-robin or shared without the addon: node:cluster bound the port, there is no socket to hand over.
        if (this.listener!.handoff?.().length === 0)
          return (
            `strategy ${this.strategy} hands its listening socket over only with the native addon ` +
            `(${implementation} in use)`
          );
        return null;
      },
    };
    return new Upgrader(master, this.o.listenTimeout + 30_000, {
      upgrading: (pid, node) => this.c.emit('upgrading', pid, node),
      upgraded: (r) => {
        this.sd.send(`MAINPID=${r.to}`, `STATUS=upgraded: master ${r.to} serves, master ${r.from} drains`);
        this.c.emit('upgraded', r.from, r.to);
      },
      failed: (message) => this.c.emit('upgradeFailed', message),
    });
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
    this.sup.on('ecv', (enabled: boolean) => this.setEcv(enabled));
    this.sup.on('crashLoop', (last: string) => {
      const reason =
        `cluster2: workers died ${BOOT_FAILURE_LIMIT} times in a row before listening (last: ${last}); ` +
        `stopping with exit code ${EXIT_CRASH_LOOP}`;
      void this.end('kill', EXIT_CRASH_LOOP, reason);
    });
  }

  /** A signal's intent (lib/shared/service.ts), from the event loop. */
  intent(i: Intent): void {
    const warn = (e: Error) => this.c.emit('warning', e.message);
    switch (i) {
      case 'shutdown':
        void this.shutdown();
        break;
      case 'stop':
        void this.stop();
        break;
      case 'reload':
        this.reload().catch(warn);
        break;
      case 'grow':
        this.resize(this.sup.size + 1);
        break;
      case 'shrink':
        if (this.sup.size > 1) this.resize(this.sup.size - 1);
        break;
      case 'upgrade':
        this.upgrade().catch(warn);
        break;
    }
  }

  /** ECV on or off in every worker, including those forked later; enabling is refused (false) while ending. */
  setEcv(enabled: boolean): boolean {
    const ok = this.service.setEcv(enabled, this.ending !== undefined, (e) =>
      this.sup.broadcast({ c2: 'ecv', enabled: e, since: this.ecv.since }),
    );
    // A worker that asked waits for the answer: the state as it stays.
    if (!ok) this.sup.broadcast({ c2: 'ecv', enabled: this.ecv.enabled, since: this.ecv.since });
    return ok;
  }

  /** Graceful: ECV DISABLED, drainDelay, drain every worker, exit 0 (1 if some had to be killed). */
  shutdown(): Promise<void> {
    return this.end('drain', EXIT_OK);
  }

  /** Immediate: kill every worker, exit 0. During a shutdown: its drain is cut short. */
  stop(): Promise<void> {
    return this.end('kill', EXIT_OK);
  }

  /**
   * The one way out. 'drain': ECV DISABLED (unless a new master serves now:
   * `handedOver`), drainDelay, the accept queues emptied into the workers,
   * every worker drains; exit 0, or 1 when some had to be killed at
   * gracefulTimeout. 'kill': every worker killed at once; exit `code`. A kill
   * asked for during a drain cuts it short; anything else asked for while
   * ending joins the ending under way.
   */
  private end(how: How, code: number, reason?: string, handedOver = false): Promise<void> {
    const e = this.ending;
    if (e) {
      if (how === 'kill' && e.how === 'drain') {
        Object.assign(e, { how, code, reason });
        e.killNow();
      }
      return e.done;
    }
    if (!this.sup) return Promise.resolve(); // not started: nothing to end
    this.to(how === 'drain' ? 'draining' : 'stopped');
    this.sup.halt();
    this.recycler.close();
    this.sd.stopWatchdog();
    if (!handedOver) this.sd.stopping();
    let killNow!: () => void;
    const killed = new Promise<void>((resolve) => (killNow = resolve));
    const ending: Ending = { how, code, reason, killNow, done: Promise.resolve() };
    this.ending = ending;
    ending.done = (async () => {
      if (how === 'drain') await Promise.race([this.drainOut(ending, handedOver), killed]);
      if (ending.how === 'kill') {
        if (this.state === 'draining') this.to('stopped');
        this.sup.end('kill');
      }
      await this.sup.empty();
      this.finish(ending);
    })();
    return ending.done;
  }

  private async drainOut(e: Ending, handedOver: boolean): Promise<void> {
    const o = this.o;
    const listener = this.listener!;
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

  /** Every worker gone: close the rest and exit with the ending's code (a start under way fails with it). */
  private finish(e: Ending): void {
    this.listener?.close();
    if (e.reason) {
      const abort = this.abortStart;
      if (abort) {
        this.service.close();
        this.control?.close();
        return abort(new StartError(e.reason, e.code));
      }
      try {
        process.stderr.write(`${e.reason}\n`);
      } catch {
        /* stderr gone */
      }
    }
    this.service.end(e.code);
  }

  /**
   * Replace every worker with one that loads the code afresh,
   * reloadConcurrency at a time. The first replacement that fails (throws, exits, or is not up within
   * listenTimeout) stops the reload; the old workers keep serving. Emits
   * `reloaded(pairs)` or `reloadFailed(message)`. A reload asked for while one
   * runs joins it.
   */
  reload(): Promise<void> {
    if (this.reloading) return this.reloading;
    if (this.state !== 'running') {
      const why = this.state === 'upgrading' ? 'an upgrade is under way' : `the master is ${this.state}`;
      return Promise.reject(new Error(`cluster2: cannot reload while ${why}`));
    }
    this.to('reloading');
    this.sd.reloading();
    const pairs: [number, number][] = [];
    const onRecycled = (old: WorkerInfo, neo: WorkerInfo, reason: RecycleReason) => {
      if (reason === 'reload') pairs.push([old.pid, neo.pid]);
    };
    this.sup.on('recycled', onRecycled);
    const slots = this.sup.accepting().map((w) => w.slot);
    this.reloading = this.recycler
      .reload(slots)
      .then(
        () => {
          this.c.emit('reloaded', pairs);
        },
        (e: Error) => {
          const error = new Error(`cluster2: reload failed, the old workers keep serving: ${e.message}`);
          this.c.emit('reloadFailed', error.message);
          throw error;
        },
      )
      .finally(() => {
        this.sup.off('recycled', onRecycled);
        this.reloading = undefined;
        if (this.state !== 'reloading') return;
        this.to('running');
        this.sd.ready(this.statusLine());
      });
    return this.reloading;
  }

  resize(n: number): void {
    if (!Number.isInteger(n) || n < 1)
      throw new RangeError(`cluster2: resize(${n}): the number of workers must be a whole number >= 1`);
    if (this.state === 'running' || this.state === 'reloading') this.sup.resize(n);
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
