import type { EventEmitter } from 'node:events';
import { createEcvFront } from './shared/ecv';
import { EXIT_CRASH_LOOP, EXIT_KILLED, EXIT_OK } from './shared/exit-codes';
import type { Resolved } from './shared/options';
import { bindFailure } from './shared/bind-errors';
import { assertPortsFree, resolveBindHost } from './service/port-probe';
import { checkRuntime } from './service/runtime-support';
import { StartError } from './shared/start-error';
import { quiesce } from './service/quiesce';
import { Service, type Intent, type ServiceRole } from './service/service';
import type { MasterStatus } from './shared/protocol';
import { sys } from './shared/native';
import { obtainServer, type ListenCallback } from './worker/app-server';
import { drain } from './worker/drain-connections';
import { startDrain } from './worker/drain-long-lived';
import { workerLife } from './worker/lifecycle';
import { Instrumented } from './worker/instrument';
import { acceptorFor, keepAliveOnAcceptor, servesTls } from './worker/bridge';
import { listen } from './worker/runtime';

/** The signals the single process handles (no workers: no reload, resize or upgrade). */
const SINGLE_SIGNALS = ['SIGTERM', 'SIGINT', 'SIGQUIT'] as const;

/**
 * `p`, bounded by listenTimeout as a worker's first start is: an app whose
 * listen callback never calls back (or whose server never listens) stops the
 * start with exit 70 and the reason, instead of hanging (a timer of the app
 * keeps the loop alive) or exiting 0 in silence (nothing does). The timer is
 * not unref'd: until it fires, it is what keeps the process alive.
 */
async function withinListenTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => {
      const why =
        `cluster2: the app did not listen within listenTimeout (${ms} ms): its listen callback gave no server ` +
        '(by cb(server), or returned or resolved), or the server never listened; ' +
        `stopping with exit code ${EXIT_CRASH_LOOP}`;
      reject(new StartError(why, EXIT_CRASH_LOOP));
    }, ms);
  });
  try {
    return await Promise.race([p, expired]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * `cluster: false`: one process with the same features (ECV, idle timeout,
 * graceful shutdown, pid file, port-busy exit), no workers. What it shares
 * with the master (pid files, signals, monitor, ECV, the exit) is lib/shared/service.ts.
 */
export class Single implements ServiceRole {
  private readonly service: Service;
  private inst?: Instrumented;
  private exiting?: Promise<void>;
  /** The start failed: a listen callback that calls back after that is not served. */
  private failed = false;

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

  async start(fn: ListenCallback): Promise<void> {
    try {
      await this.boot(fn);
    } catch (e) {
      this.failed = true;
      this.service.close();
      this.inst?.server.close();
      throw e;
    }
  }

  private async boot(fn: ListenCallback): Promise<void> {
    const o = this.o;
    const runtimeNote = checkRuntime();
    this.service.prepare();
    const host = await resolveBindHost(o.host);
    await assertPortsFree(o, host);
    this.service.writePidFiles();
    this.service.onSignals(SINGLE_SIGNALS, this);
    await withinListenTimeout(this.listen(fn, host, runtimeNote), o.listenTimeout);
  }

  /** Run the app's listen callback, wrap its server, start the monitor, and listen on the app port. */
  private async listen(fn: ListenCallback, host: string, runtimeNote: string | null): Promise<void> {
    const o = this.o;
    const server = await obtainServer(fn);
    if (this.failed) return; // too late: the start gave up (listenTimeout)
    const inst = (this.inst = new Instrumented(server, {
      timeout: o.timeout,
      connThreshold: 0,
      maxRequests: 0,
      warn: (m) => this.c.emit('warning', m),
      recycle: () => {},
    }));
    if (o.ecv && (inst.http || inst.h2))
      inst.front = createEcvFront(o.ecv, this.ecv, (enabled) => this.setEcv(enabled));
    acceptorFor(server);
    keepAliveOnAcceptor(server, inst.live(), (s) => !Instrumented.idle(s));
    await this.service.serve(this);
    if (runtimeNote) process.stderr.write(`${runtimeNote}\n`);
    this.c.emit('strategy', 'single', o.port);
    await new Promise<void>((resolve, reject) => {
      // A bind that fails after the port check (taken meanwhile) has the code of any failed bind.
      const failed = (e: NodeJS.ErrnoException) =>
        reject(e.code ? bindFailure({ host, port: o.port, code: e.code }, o.portBusyExitCode) : e);
      server.once('error', failed);
      server.once('listening', () => {
        server.off('error', failed);
        this.c.emit('listening', process.pid, server.address());
        resolve();
      });
      listen(acceptorFor(server), { kind: 'port', host: o.host, port: o.port });
    });
  }

  intent(i: Intent): void {
    if (i === 'stop') void this.stop();
    else if (i === 'shutdown') void this.shutdown();
  }

  appTls(): boolean {
    return this.inst !== undefined && servesTls(this.inst.server);
  }

  setEcv(enabled: boolean): boolean {
    // A shutdown keeps ECV DISABLED until the end.
    return this.service.setEcv(enabled, this.exiting !== undefined);
  }
  /** The same snapshot as a master's, with this process as the one worker. */
  status(): MasterStatus {
    const address = this.inst?.server.address();
    const port = typeof address === 'object' && address ? address.port : this.o.port;
    const s = this.inst?.stats() ?? { connections: 0, open: 0, requests: 0, rss: 0, heapUsed: 0 };
    return {
      pid: process.pid,
      state: this.exiting ? 'draining' : 'running',
      strategy: 'single',
      implementation: sys.implementation,
      port,
      started: this.service.started,
      size: 1,
      restarts: 0,
      recycles: {},
      exits: 0,
      ecv: { enabled: this.ecv.enabled, since: this.ecv.since },
      retired: { connections: 0, requests: 0 },
      workers: [
        {
          pid: process.pid,
          slot: 0,
          state: this.exiting ? 'draining' : 'listening',
          started: this.service.started,
          listened: this.service.started,
          restarts: 0,
          ...s,
        },
      ],
      spare: null,
      events: this.service.eventLog(),
    };
  }

  shutdown(): Promise<void> {
    if (this.exiting) return this.exiting;
    this.setEcv(false);
    this.exiting = (async () => {
      if (this.o.drainDelay) await new Promise((r) => setTimeout(r, this.o.drainDelay));
      let clean = true;
      if (this.inst) {
        // Every connection the kernel already accepted is accepted here before the listener closes.
        // The connections open here are this process's own to drain, not hand-offs to wait for.
        const warn = (m: string) => this.c.emit('warning', m);
        await quiesce(this.status().port, Date.now() + this.o.gracefulTimeout / 2, { handsOver: false, warn });
        const deadline = Date.now() + this.o.gracefulTimeout;
        const hooks = workerLife().runHooks('shutdown', deadline, warn);
        const started = startDrain(this.inst, { reason: 'shutdown', deadline, warn, hooks });
        clean = await drain(this.inst, { gracefulTimeout: this.o.gracefulTimeout });
        clean = (await started.settled(deadline)) && clean;
      }
      this.service.end(clean ? EXIT_OK : EXIT_KILLED);
    })();
    return this.exiting;
  }

  /** Immediate: exit 0 now, whatever is in flight. */
  stop(): Promise<void> {
    this.service.end(EXIT_OK);
    return Promise.resolve();
  }
}
