import type { EventEmitter } from 'node:events';
import * as fs from 'node:fs';
import * as net from 'node:net';
import { EcvState } from '../ecv';
import { EXIT_CONFIG, EXIT_CRASH_LOOP, EXIT_KILLED, EXIT_OK } from '../exit-codes';
import type { RecycleReason } from '../ipc';
import { inheritedChoice, monitorSocket, oneSocket, takeInherited, type Inherited } from '../listen/inherited';
import { NodeClusterListener } from '../listen/node-cluster';
import { NodeReusePortListener, ReusePortListener } from '../listen/reuseport';
import { chooseStrategy, type ActiveStrategy, type Listener } from '../listen/strategy';
import type { Resolved } from '../options';
import { fallbackNote, implementation, loadError, native } from '../native';
import { stickyProblem } from '../sticky';
import { holdPidFile } from '../pid-file';
import { addDurations } from '../worker/durations';
import { removePidFile, writePidFile } from '../pidfiles';
import { orCantCreate, preparePidsDir } from '../pid-trust';
import { guardStdio } from '../safe-stdio';
import { formatBusy, probePort, resolveBindHost, resolveHost } from '../port-probe';
import { ControlServer } from './control-server';
import { DegradedWatch } from './degraded';
import { StartError } from '../start-error';
import { Recycler } from './recycle';
import { quiesce } from './quiesce';
import { startMetricsServer } from '../monitor/metrics-server';
import { startMonitor, type Monitor } from '../monitor/server';
import { BOOT_FAILURE_LIMIT, Supervisor, type WorkerInfo } from './supervisor';
import { SdNotify } from './sd-notify';
import { UpgradeChild, Upgrader, type UpgradeResult } from './upgrade';
import { MASTER_SIGNALS, type MasterState as State, type MasterStatus } from '../status';

// Kept for code that imported them from here; new code imports lib/status.ts.
export { MASTER_SIGNALS, type MasterStatus };

/** Let the OS pick a free port (for port 0 with strategies whose workers bind themselves). */
export function pickPort(host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen({ host: host || undefined, port: 0, exclusive: true }, () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

/** Every app and monitor port free? Otherwise one line on stderr and exit with portBusyExitCode. */
export async function exitIfPortsBusy(
  o: Resolved,
  host: string,
  adopted: { app?: boolean; mon?: boolean } = {},
): Promise<void> {
  const checks: [string, number][] = adopted.app ? [] : [[host, o.port]];
  if (o.monPort && !adopted.mon) checks.push([await resolveHost(o.monHost), o.monPort]);
  for (const [h, port] of checks) {
    if (port === 0) continue;
    const holder = await probePort(h, port);
    if (holder) {
      process.stderr.write(`${formatBusy(holder)}\n`);
      process.exit(o.portBusyExitCode);
    }
  }
}

/** net.ipv4.tcp_migrate_req: 1 moves a closed listener's queue to another socket of its reuseport group. */
export function tcpMigrateReq(): string {
  try {
    return fs.readFileSync('/proc/sys/net/ipv4/tcp_migrate_req', 'utf8').trim();
  } catch {
    return 'unknown';
  }
}

function migrateNote(): string {
  return `cluster2: reuseport through Node's own reusePort option: connections queued on a worker that dies are reset unless net.ipv4.tcp_migrate_req is 1 (it is ${tcpMigrateReq()})`;
}

/** How many lifecycle events the master remembers for the status page. */
const EVENT_LOG = 50;
const LOGGED = ['forked', 'listening', 'died', 'recycled', 'warning', 'ecv', 'strategy', 'spare'];

/**
 * The master: start, shutdown, stop, reload, resize; signal handlers; exit codes.
 * The supervisor owns the workers; this decides what happens to them.
 */
export class Master {
  readonly ecv = new EcvState();
  strategy: ActiveStrategy | undefined;
  port = 0;
  private state: State = 'idle';
  private sup!: Supervisor;
  private recycler!: Recycler;
  private listener!: Listener;
  private exiting: Promise<void> | undefined;
  private sigints = 0;
  private readonly started = Date.now();
  private readonly events: MasterStatus['events'] = [];
  private stopping = false;
  private reloading: Promise<void> | undefined;
  private monitor: Monitor | undefined;
  private readonly retired: MasterStatus['retired'] = { connections: 0, requests: 0 };
  private degraded!: DegradedWatch;
  private readonly sd = new SdNotify();
  private upgrader!: Upgrader;
  /** The app socket came from systemd (socket activation), which keeps it after this master. */
  private socketHeld = false;

  constructor(
    private readonly c: EventEmitter,
    private readonly o: Resolved,
  ) {}

  async start(): Promise<void> {
    const o = this.o;
    this.state = 'starting';
    guardStdio((m) => this.c.emit('warning', m));
    preparePidsDir(o.pids);
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
    await exitIfPortsBusy(o, host, {
      app: !!inh && (inh.app.length > 0 || upgrading !== undefined),
      mon: monFd !== undefined,
    });
    this.listener = await this.createListener(choice.name, host, inh);
    try {
      await orCantCreate(() => new ControlServer(this, this.c, o.pids).listen());
      orCantCreate(() => writePidFile(o.pids, 'master'));
    } catch (e) {
      this.listener.close();
      throw e;
    }
    this.strategy = this.listener.name;
    this.port = this.listener.port;
    process.on('exit', () => removePidFile(o.pids, 'master', process.pid));
    if (o.pidFile) holdPidFile(o.pidFile);
    this.sup = new Supervisor(o, this.listener);
    this.sup.ecv = this.ecv;
    this.recycler = new Recycler(this.sup, o, (e) =>
      this.c.emit('warning', `cluster2: a recycle failed: ${e.message}`),
    );
    this.wire();
    this.degraded = new DegradedWatch(
      this.sup,
      () => this.state === 'running',
      (m) => this.c.emit('warning', m),
    );
    this.monitor = await startMonitor(
      this.c,
      o,
      {
        status: () => this.status(),
        ecv: this.ecv,
        setEcv: (e) => this.setEcv(e),
        serving: () => this.degraded.serving(),
        appTls: () => this.workers().some((w) => w.tls),
      },
      monFd,
    );
    this.upgrader = this.upgraderOf();
    await startMetricsServer(this.c, o, () => this.status());
    for (const sig of MASTER_SIGNALS) process.on(sig, () => this.onSignal(sig));
    this.c.emit('strategy', this.strategy, this.port);
    if (this.strategy === 'reuseport-node') this.c.emit('warning', migrateNote());
    await this.sup.start(o.noWorkers);
    if (this.state === 'starting') this.state = 'running';
    // An upgrade's new master: the old one tells systemd MAINPID once it hands over.
    if (upgrading) await upgrading.ready();
    else this.sd.ready(this.statusLine());
    if (this.state === 'running') this.sd.startWatchdog();
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
    return this.upgrader.upgrade(node);
  }

  private upgraderOf(): Upgrader {
    const master = {
      handoff: () => ({
        app: this.listener.handoff?.() ?? [],
        reusePort: this.strategy === 'reuseport',
        port: this.port,
        monitor: this.monitor?.fd(),
        monPort: this.o.monPort || undefined,
      }),
      retire: () => void this.shutdown(true),
      refusal: () => {
        if (this.state !== 'running') return `the master is ${this.state}`;
        if (this.reloading) return 'a reload is under way';
        // round-robin or shared without the addon: node:cluster bound the port, there is no socket to hand over.
        if (this.listener.handoff?.().length === 0)
          return `strategy ${this.strategy} hands its listening socket over only with the native addon (${implementation} in use)`;
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
    for (const event of LOGGED) {
      c.on(event, (...args: unknown[]) => {
        this.events.push({ time: Date.now(), event, args });
        if (this.events.length > EVENT_LOG) this.events.shift();
      });
    }
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
    this.sup.on('crashLoop', (last: string) => this.crashLoop(last));
  }

  private onSignal(sig: NodeJS.Signals): void {
    this.c.emit(sig);
    switch (sig) {
      case 'SIGINT':
        if (++this.sigints > 1) void this.stop();
        else void this.shutdown();
        break;
      case 'SIGTERM':
        void this.shutdown();
        break;
      case 'SIGQUIT':
        void this.stop();
        break;
      case 'SIGHUP':
        this.reload().catch((e: Error) => this.c.emit('warning', e.message));
        break;
      case 'SIGTTIN':
        this.resize(this.sup.size + 1);
        break;
      case 'SIGTTOU':
        if (this.sup.size > 1) this.resize(this.sup.size - 1);
        break;
      case 'SIGUSR2':
        this.upgrade().catch((e: Error) => this.c.emit('warning', e.message));
        break;
    }
  }

  /** ECV on or off in every worker, including those forked later. */
  setEcv(enabled: boolean): boolean {
    if (enabled && this.state === 'stopping') {
      // A shutdown keeps ECV DISABLED until the end; a worker that asked waits for this answer.
      this.sup.broadcast({ c2: 'ecv', enabled: this.ecv.enabled, since: this.ecv.since });
      return false;
    }
    if (!this.ecv.set(enabled)) return true;
    this.sup.broadcast({ c2: 'ecv', enabled, since: this.ecv.since });
    this.c.emit('ecv', enabled);
    return true;
  }

  /**
   * Graceful: ECV DISABLED, drainDelay, drain every worker, exit 0 (1 if some had to be killed).
   * `handedOver`: a new master serves now (upgrade): ECV stays as it is, no delay, nothing told to systemd.
   */
  shutdown(handedOver = false): Promise<void> {
    if (this.exiting) return this.exiting;
    this.state = 'stopping';
    this.recycler.stop();
    this.sup.respawn = false;
    this.sd.stopWatchdog();
    if (!handedOver) {
      this.sd.stopping();
      this.setEcv(false);
    }
    this.sup.broadcast({ c2: 'stopping' });
    this.exiting = (async () => {
      if (this.o.drainDelay && !handedOver) await new Promise((r) => setTimeout(r, this.o.drainDelay));
      // The socket outlives this master (a new master, or systemd, holds it): stop accepting
      // here first, so what the kernel queues waits for the next one instead of being reset.
      const settle = handedOver || this.socketHeld ? (this.listener.stopAccepting?.() ?? 0) : 0;
      if (settle) await new Promise((r) => setTimeout(r, settle));
      let killed = false;
      const cut = setTimeout(() => {
        killed = this.sup.workers.size > 0;
        this.sup.killAll();
      }, this.o.gracefulTimeout);
      // Every connection the kernel already accepted reaches a worker first (see quiesce).
      // Not when the sockets outlive this master: the filter would stay on them for the next one.
      if (!handedOver && !this.socketHeld) {
        await quiesce(this.port, Date.now() + this.o.gracefulTimeout / 2, () => this.sup.workers.size > 0);
      }
      this.sup.drainAll();
      // The workers hold their own copies of the sockets until they close them:
      // from now on the kernel refuses new connections instead of queueing them.
      this.listener.close();
      await this.sup.empty();
      clearTimeout(cut);
      this.exit(killed ? EXIT_KILLED : EXIT_OK);
    })();
    return this.exiting;
  }

  /** Immediate: kill every worker, exit 0. */
  stop(): Promise<void> {
    if (this.stopping) return this.exiting!;
    this.stopping = true;
    this.state = 'stopping';
    this.sd.stopping();
    this.recycler.stop();
    this.sup.killAll('SIGKILL');
    this.exiting = this.sup.empty().then(() => this.exit(EXIT_OK));
    return this.exiting;
  }

  private crashLoop(last: string): void {
    this.stopping = true;
    process.stderr.write(
      `cluster2: workers died ${BOOT_FAILURE_LIMIT} times in a row before listening (last: ${last}); stopping with exit code ${EXIT_CRASH_LOOP}\n`,
    );
    this.state = 'stopping';
    this.recycler.stop();
    this.sup.killAll('SIGKILL');
    this.exiting = this.sup.empty().then(() => this.exit(EXIT_CRASH_LOOP));
  }

  /**
   * Replace every worker with one that loads the code afresh,
   * reloadConcurrency at a time. The first replacement that fails (throws, exits, or is not up within
   * listenTimeout) stops the reload; the old workers keep serving. Emits
   * `reloaded(pairs)` or `reloadFailed(message)`. A reload asked for while one
   * runs joins it.
   */
  reload(): Promise<void> {
    if (this.state !== 'running') return Promise.reject(new Error(`cluster2: cannot reload while ${this.state}`));
    if (this.reloading) return this.reloading;
    if (this.upgrader.busy) return Promise.reject(new Error('cluster2: cannot reload while an upgrade is under way'));
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
        if (this.state === 'running') this.sd.ready(this.statusLine());
      });
    return this.reloading;
  }

  resize(n: number): void {
    if (!Number.isInteger(n) || n < 1)
      throw new RangeError(`cluster2: resize(${n}): the number of workers must be a whole number >= 1`);
    if (this.state !== 'running') return;
    this.sup.resize(n);
  }

  workers(): WorkerInfo[] {
    return [...this.sup.workers.values()];
  }

  status(): MasterStatus {
    return {
      pid: process.pid,
      state: this.state === 'running' && !this.degraded.serving() ? 'degraded' : this.state,
      strategy: this.strategy,
      implementation,
      port: this.port,
      started: this.started,
      size: this.sup.size,
      restarts: this.sup.restarts,
      ecv: { enabled: this.ecv.enabled, since: this.ecv.since },
      retired: { ...this.retired },
      workers: this.workers().map((w) => ({
        pid: w.pid,
        slot: w.slot,
        state: w.state,
        started: w.started,
        listened: w.listened,
        restarts: this.sup.slotRestarts[w.slot] ?? 0,
        ...w.stats,
      })),
      spare: this.sup.spares.status(),
      events: this.events.slice(),
    };
  }

  private exit(code: number): void {
    this.monitor?.close();
    this.listener.close();
    removePidFile(this.o.pids, 'master', process.pid);
    this.c.emit('exit', code);
    process.exit(code);
  }
}
