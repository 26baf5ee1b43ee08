import type { EventEmitter } from 'node:events';
import { EcvState, createEcvFront } from './ecv';
import { EXIT_KILLED, EXIT_OK } from './exit-codes';
import type { Resolved } from './options';
import { holdPidFile } from './pid-file';
import { removePidFile, writePidFile } from './pidfiles';
import { orCantCreate, preparePidsDir } from './pid-trust';
import { guardStdio } from './safe-stdio';
import { resolveBindHost } from './port-probe';
import { exitIfPortsBusy } from './master/lifecycle';
import { quiesce } from './master/quiesce';
import type { MasterStatus } from './status';
import { startMetricsServer } from './monitor/metrics-server';
import { startMonitor, type Monitor } from './monitor/server';
import { implementation } from './native';
import { obtainServer, type ListenCallback } from './worker/app-server';
import { drain } from './worker/drain';
import { startDrain } from './worker/drain-start';
import { Instrumented } from './worker/instrument';
import { listen, servesTls } from './worker/runtime';

/**
 * `cluster: false`: one process with the same features (ECV, idle timeout,
 * graceful shutdown, pid file, port-busy exit), no workers.
 */
export class Single {
  readonly ecv = new EcvState();
  private inst?: Instrumented;
  private exiting?: Promise<void>;
  private monitor?: Monitor;
  private readonly started = Date.now();

  constructor(
    private readonly c: EventEmitter,
    private readonly o: Resolved,
  ) {}

  async start(fn: ListenCallback): Promise<void> {
    const o = this.o;
    guardStdio((m) => this.c.emit('warning', m));
    preparePidsDir(o.pids);
    const host = await resolveBindHost(o.host);
    await exitIfPortsBusy(o, host);
    orCantCreate(() => writePidFile(o.pids, 'master'));
    process.on('exit', () => removePidFile(o.pids, 'master', process.pid));
    if (o.pidFile) holdPidFile(o.pidFile);
    for (const sig of ['SIGTERM', 'SIGINT', 'SIGQUIT'] as const) {
      process.on(sig, () => {
        this.c.emit(sig);
        if (sig === 'SIGQUIT') void this.stop();
        else void this.shutdown();
      });
    }
    const server = await obtainServer(fn);
    const inst = (this.inst = new Instrumented(server, {
      timeout: o.timeout,
      connThreshold: 0,
      maxRequests: 0,
      warn: (m) => this.c.emit('warning', m),
      recycle: () => {},
    }));
    if (o.ecv && (inst.http || inst.h2))
      inst.front = createEcvFront(o.ecv, this.ecv, (enabled) => this.setEcv(enabled));
    this.monitor = await startMonitor(this.c, o, {
      status: () => this.status(),
      ecv: this.ecv,
      setEcv: (e) => this.setEcv(e),
      appTls: () => servesTls(server),
    });
    await startMetricsServer(this.c, o, () => this.status());
    this.c.emit('strategy', 'single', o.port);
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.once('listening', () => {
        server.off('error', reject);
        this.c.emit('listening', process.pid, server.address());
        resolve();
      });
      listen(server, { kind: 'port', host: o.host, port: o.port });
    });
  }

  setEcv(enabled: boolean): boolean {
    // A shutdown keeps ECV DISABLED until the end.
    if (enabled && this.exiting) return false;
    if (this.ecv.set(enabled)) this.c.emit('ecv', enabled);
    return true;
  }

  /** The same snapshot as a master's, with this process as the one worker. */
  status(): MasterStatus {
    const address = this.inst?.server.address();
    const port = typeof address === 'object' && address ? address.port : this.o.port;
    const s = this.inst?.stats() ?? { connections: 0, open: 0, requests: 0, rss: 0, heapUsed: 0 };
    return {
      pid: process.pid,
      state: this.exiting ? 'stopping' : 'running',
      strategy: 'single',
      implementation,
      port,
      started: this.started,
      size: 1,
      restarts: 0,
      ecv: { enabled: this.ecv.enabled, since: this.ecv.since },
      retired: { connections: 0, requests: 0 },
      workers: [
        {
          pid: process.pid,
          slot: 0,
          state: this.exiting ? 'draining' : 'listening',
          started: this.started,
          listened: this.started,
          restarts: 0,
          ...s,
        },
      ],
      spare: null,
      events: [],
    };
  }

  shutdown(): Promise<void> {
    if (this.exiting) return this.exiting;
    this.ecv.set(false);
    this.exiting = (async () => {
      if (this.o.drainDelay) await new Promise((r) => setTimeout(r, this.o.drainDelay));
      let clean = true;
      if (this.inst) {
        // Every connection the kernel already accepted is accepted here before the listener closes.
        await quiesce(this.status().port, Date.now() + this.o.gracefulTimeout / 2);
        const deadline = Date.now() + this.o.gracefulTimeout;
        const started = startDrain(this.inst, { reason: 'shutdown', deadline, warn: (m) => this.c.emit('warning', m) });
        clean = await drain(this.inst, { gracefulTimeout: this.o.gracefulTimeout });
        clean = (await started.settled(deadline)) && clean;
      }
      this.exit(clean ? EXIT_OK : EXIT_KILLED);
    })();
    return this.exiting;
  }

  stop(): Promise<void> {
    this.exit(EXIT_OK);
    return Promise.resolve();
  }

  private exit(code: number): void {
    this.monitor?.close();
    removePidFile(this.o.pids, 'master', process.pid);
    this.c.emit('exit', code);
    process.exit(code);
  }
}
