import type { EventEmitter } from 'node:events';
import type { Server } from 'node:http';
import { EcvState } from '../shared/ecv';
import type { Resolved } from '../shared/options';
import { holdPidFile, releasePidFile } from './main-pid-file';
import { orCantCreate, preparePidsDir, removePidFile, sweepStale, writePidFile } from '../shared/pids-dir';
import { guardStdio } from '../shared/safe-stdio';
import type { MasterStatus } from '../shared/protocol';
import { startMetricsServer } from '../monitor/metrics-server';
import { startMonitor, type Monitor } from '../monitor/server';
import type { WorkerProm } from '../monitor/prom-aggregate';

/** What a signal asks of the process (lib/shared/protocol.ts MASTER_SIGNALS). */
export type Intent = 'shutdown' | 'stop' | 'reload' | 'grow' | 'shrink' | 'upgrade';

const INTENT_OF: Record<string, Intent> = {
  SIGTERM: 'shutdown',
  SIGINT: 'shutdown',
  SIGQUIT: 'stop',
  SIGHUP: 'reload',
  SIGTTIN: 'grow',
  SIGTTOU: 'shrink',
  SIGUSR2: 'upgrade',
};

/** How many lifecycle events the process remembers for the status page. */
const EVENT_LOG = 50;
const LOGGED = ['forked', 'listening', 'died', 'recycled', 'warning', 'ecv', 'strategy', 'spare'];

/** What the service asks of the process it serves for: the master, or the single process. */
export interface ServiceRole {
  status(): MasterStatus;
  /** Act on a signal's intent (called from the event loop, never inside the signal handler). */
  intent(i: Intent, sig?: NodeJS.Signals): void;
  /** ECV on or off; false when refused (a stop keeps it DISABLED). */
  setEcv(enabled: boolean): boolean;
  /** Some worker listens (the monitor-port ECV answers WARNING otherwise). */
  serving?(): boolean;
  /** The app serves TLS: the monitor-port ECV probes it over https. */
  appTls(): boolean;
  /** The app's prom-client metrics of each worker (a master; lib/monitor/prom-aggregate.ts). */
  appMetrics?(): WorkerProm[];
}

/**
 * What the master and the single process (`cluster: false`) share, as the
 * one process that stands for the service: the pids directory and pid files,
 * the signals (each only queues an intent), the monitor and metrics servers,
 * the ECV state, the event log, and the last step of the way out: close all
 * of it and hand the exit code to the entry point.
 */
export class Service {
  readonly ecv = new EcvState();
  readonly started = Date.now();
  private readonly events: MasterStatus['events'] = [];
  private readonly intents: [Intent, NodeJS.Signals][] = [];
  private readonly handlers = new Map<NodeJS.Signals, () => void>();
  private monitor?: Monitor;
  private metrics?: Server;
  private pidWritten = false;
  private pidFileHeld = false;
  private sigints = 0;
  private closed = false;

  constructor(
    private readonly c: EventEmitter,
    private readonly o: Resolved,
    /** The entry point's exit (lib/cluster.ts): the only place the process is told to exit. */
    private readonly exit: (code: number) => void,
  ) {
    for (const event of LOGGED) {
      c.on(event, (...args: unknown[]) => {
        this.events.push({ time: Date.now(), event, args });
        if (this.events.length > EVENT_LOG) this.events.shift();
      });
    }
  }

  /** How many listeners of `event` are the service's own (the event log): the app's are the others. */
  ownListeners(event: string): number {
    return LOGGED.includes(event) ? 1 : 0;
  }

  /** Before anything binds: stdio errors cannot kill the process; the pids directory is checked (or made 0700). */
  prepare(): void {
    guardStdio((m) => this.c.emit('warning', m));
    preparePidsDir(this.o.pids);
    // Files a SIGKILLed master could not remove (its own, a worker's whose exit it had not seen yet).
    sweepStale(this.o.pids);
  }

  /**
   * `master.<pid>.pid` in pids (exit 73 when it cannot be created): control clients find
   * this process by it. With `pidFile`, that file too, unless `ownPidFile` is false (a
   * master started by an upgrade: the process the user started holds it for the service's life).
   */
  writePidFiles(ownPidFile = true): void {
    orCantCreate(() => writePidFile(this.o.pids, 'master'));
    this.pidWritten = true;
    process.on('exit', () => this.removePidFiles());
    if (this.o.pidFile && ownPidFile) {
      holdPidFile(this.o.pidFile);
      this.pidFileHeld = true;
    }
  }

  /** No longer a master that control clients should find (an upgrade handed over): `master.<pid>.pid` goes. */
  unpublish(): void {
    if (this.pidWritten) removePidFile(this.o.pids, 'master', process.pid);
    this.pidWritten = false;
  }

  /**
   * Stop serving the monitor and the metrics (an upgrade handed over: the new master serves
   * them on the same sockets, so this one must not answer for a master whose workers drain).
   */
  closeServers(): void {
    this.monitor?.close();
    this.metrics?.close();
    this.monitor = this.metrics = undefined;
  }

  private removePidFiles(): void {
    this.unpublish();
    if (this.pidFileHeld) releasePidFile(this.o.pidFile!);
  }

  /**
   * The monitor and the metrics server, as the options ask; after an upgrade, on the
   * listening sockets inherited from the master replaced (`fds`).
   */
  async serve(role: ServiceRole, fds: { monitor?: number; metrics?: number } = {}): Promise<void> {
    this.monitor = await startMonitor(
      this.c,
      this.o,
      {
        status: () => role.status(),
        ecv: this.ecv,
        setEcv: (e) => role.setEcv(e),
        serving: role.serving && (() => role.serving!()),
        appTls: () => role.appTls(),
        appMetrics: () => role.appMetrics?.() ?? [],
      },
      fds.monitor,
    );
    const metricsSrc = { status: () => role.status(), appMetrics: () => role.appMetrics?.() ?? [] };
    this.metrics = await startMetricsServer(this.c, this.o, metricsSrc, fds.metrics);
  }

  /** The listening descriptors of the monitor and the metrics server (handed to a new master at an upgrade). */
  listeningFds(): { monitor?: number; metrics?: number } {
    const fd = (s?: { _handle?: { fd?: number } }) => (typeof s?._handle?.fd === 'number' ? s._handle.fd : undefined);
    return { monitor: this.monitor?.fd(), metrics: fd(this.metrics as { _handle?: { fd?: number } } | undefined) };
  }

  /**
   * Each signal is emitted as an event of its name and queues its intent,
   * which the role acts on from the event loop. SIGINT a second time: stop.
   */
  onSignals(signals: readonly NodeJS.Signals[], role: ServiceRole): void {
    for (const sig of signals) {
      const handler = () => {
        this.c.emit(sig);
        const intent = sig === 'SIGINT' && ++this.sigints > 1 ? 'stop' : INTENT_OF[sig];
        if (this.intents.push([intent, sig]) === 1) setImmediate(() => this.act(role));
      };
      this.handlers.set(sig, handler);
      process.on(sig, handler);
    }
  }

  private act(role: ServiceRole): void {
    for (const [intent, sig] of this.intents.splice(0)) role.intent(intent, sig);
  }

  /**
   * ECV on or off, as the role's `tell` spreads it; a stop (`ending`) keeps
   * it DISABLED: enabling then is refused (false). Emits 'ecv' on a change.
   */
  setEcv(enabled: boolean, ending: boolean, tell: (enabled: boolean) => void = () => {}): boolean {
    if (enabled && ending) return false;
    if (!this.ecv.set(enabled)) return true;
    tell(enabled);
    this.c.emit('ecv', enabled);
    return true;
  }

  eventLog(): MasterStatus['events'] {
    return this.events.slice();
  }

  /**
   * Close the monitor and metrics servers, remove the pid files and the signal handlers (a
   * failed start, the end). `keepPidFile`: the process stays as the keeper of the master that
   * replaced it (lib/master/keeper.ts) and holds the `pidFile` until it exits.
   */
  close(keepPidFile = false): void {
    if (this.closed) return;
    this.closed = true;
    this.monitor?.close();
    this.metrics?.close();
    if (keepPidFile) this.unpublish();
    else this.removePidFiles();
    for (const [sig, handler] of this.handlers) process.off(sig, handler);
  }

  /** The last step of every way out: close, emit 'exit', and exit with `code` (through the entry point). */
  end(code: number): void {
    // From here the process only exits: a signal that comes meanwhile (close() below restores each
    // one's default action) must not kill it first, and its exit code with it (a SIGHUP in the
    // last moments of a stop made it exit "by SIGHUP": chaos seed 1111745385).
    for (const sig of this.handlers.keys()) process.on(sig, () => {});
    this.close();
    sweepStale(this.o.pids);
    this.c.emit('exit', code);
    this.exit(code);
  }
}
