import type { EventEmitter } from 'node:events';
import * as fs from 'node:fs';
import * as net from 'node:net';
import {
  CONTROL_OPS,
  controlSocketFile,
  socketAddress,
  type ControlAnswerLine,
  type ControlRequest,
  type ControlResults,
  type MasterStatus,
} from '../shared/protocol';

/** What the control server asks of the master. */
export interface Controlled {
  status(): MasterStatus;
  reload(): Promise<void>;
  resize(n: number): void;
  shutdown(): Promise<void>;
  stop(): Promise<void>;
  /** false: refused (a shutdown keeps ECV disabled). */
  setEcv(enabled: boolean): boolean;
  upgrade(node?: string): Promise<ControlResults['upgrade']>;
}

/** A request line longer than this is refused (a request is a few dozen bytes). */
const MAX_REQUEST = 4096;
/** How long a client may take to send its request line. */
const REQUEST_TIMEOUT_MS = 10_000;
/** The master's states in which it may be scaled (during a reload too: the reload follows the new size). */
const SCALABLE: MasterStatus['state'][] = ['running', 'degraded', 'reloading'];
/** The noWorkers range (options.ts). */
const MAX_WORKERS = 1024;

/**
 * The master's control channel: a Unix socket at `<pids>/master.<pid>.sock`
 * where `cluster2 status|reload|scale|shutdown|stop` and `new Cluster({ pids })`
 * in another process ask the master and wait for the outcome. One JSON request
 * line per connection, one JSON answer line back (lib/client/control.ts is the client).
 *
 * Only the master's user (and root) may connect: the socket is created with
 * mode 0600 (umask set around the bind, so there is no moment when it is open
 * to others). Node cannot read SO_PEERCRED, and an abstract socket would be
 * reachable by every local user, so the file mode is the access check.
 */
export class ControlServer {
  readonly file: string;
  private readonly server = net.createServer((s) => this.onConnection(s));

  constructor(
    private readonly master: Controlled,
    private readonly c: EventEmitter,
    private readonly pids: string,
  ) {
    this.file = controlSocketFile(pids, process.pid);
  }

  /**
   * Bind now (synchronously, so the socket exists before the pid file is
   * written). Resolves once listening; rejects with an error naming the file
   * when it cannot be created (the master refuses to start: exit 73).
   */
  listen(): Promise<void> {
    // A file of a previous process with our pid (after a SIGKILL) is stale.
    try {
      fs.unlinkSync(this.file);
    } catch {
      /* none */
    }
    let release = () => {};
    return new Promise<void>((resolve, reject) => {
      const failed = (e: NodeJS.ErrnoException) => {
        release();
        const err: NodeJS.ErrnoException = new Error(
          `cluster2: cannot create the control socket ${this.file}: ${e.code ?? e.message}`,
        );
        err.code = e.code;
        reject(err);
      };
      this.server.once('error', failed);
      this.server.once('listening', () => {
        release();
        this.server.off('error', failed);
        this.server.on('error', (e) =>
          this.c.emit('warning', `cluster2: the control socket ${this.file}: ${e.message}`),
        );
        process.on('exit', () => this.remove());
        resolve();
      });
      try {
        const s = socketAddress(this.file);
        release = s.release;
        const umask = process.umask(0o177);
        try {
          this.server.listen(s.address);
        } finally {
          process.umask(umask);
        }
      } catch (e) {
        failed(e as NodeJS.ErrnoException);
        return;
      }
      this.server.unref();
    });
  }

  /** Stop listening and remove the socket file (connections open get their answers). */
  close(): void {
    this.server.close();
    this.remove();
  }

  private remove(): void {
    try {
      fs.unlinkSync(this.file);
    } catch {
      /* gone */
    }
  }

  private onConnection(s: net.Socket): void {
    let buf = '';
    s.setEncoding('utf8');
    s.on('error', () => {
      /* the client went away */
    });
    s.setTimeout(REQUEST_TIMEOUT_MS, () => s.destroy());
    const onData = (d: string) => {
      buf += d;
      const nl = buf.indexOf('\n');
      if (nl < 0 && buf.length <= MAX_REQUEST) return;
      s.off('data', onData);
      s.setTimeout(0); // a reload or a shutdown may take long: the client has its own timeout
      if (nl < 0)
        return this.answer(s, { ok: false, error: `cluster2: control request longer than ${MAX_REQUEST} bytes` });
      this.handle(buf.slice(0, nl), s);
    };
    s.on('data', onData);
  }

  private answer(s: net.Socket, a: ControlAnswerLine): void {
    if (!s.destroyed) s.end(`${JSON.stringify({ ...a, pid: process.pid })}\n`);
  }

  private handle(line: string, s: net.Socket): void {
    let req: ControlRequest;
    try {
      req = parseRequest(line);
    } catch (e) {
      return this.answer(s, { ok: false, error: (e as Error).message });
    }
    // Actions are logged by the command (`cluster2 start`); status requests are not (monitoring polls them).
    if (req.op !== 'status') this.c.emit('control', req.op);
    if (req.op === 'shutdown' || req.op === 'stop') {
      // The answer goes out synchronously as the master exits (process.exit runs no more callbacks).
      const onExit = (code: number) => this.answer(s, { ok: true, result: { exitCode: code } });
      this.c.once('exit', onExit);
      s.once('close', () => this.c.off('exit', onExit));
      void (req.op === 'stop' ? this.master.stop() : this.master.shutdown());
      return;
    }
    this.run(req, s).then(
      (result) => this.answer(s, { ok: true, result }),
      (e: Error) => this.answer(s, { ok: false, error: e.message }),
    );
  }

  private async run(req: ControlRequest, s: net.Socket): Promise<unknown> {
    switch (req.op) {
      case 'status':
        return this.master.status();
      case 'reload':
        await this.master.reload(); // the master emits reloaded / reloadFailed
        return { workers: this.serving() } satisfies ControlResults['reload'];
      case 'scale': {
        const now = this.master.status();
        if (!SCALABLE.includes(now.state)) throw new Error(`cluster2: cannot scale while ${now.state}`);
        const n = req.n ?? now.size + (req.delta ?? 0);
        if (!Number.isInteger(n) || n < 1 || n > MAX_WORKERS) {
          throw new RangeError(
            `cluster2: scale: the number of workers must be a whole number from 1 to ${MAX_WORKERS}; asked for ${n}`,
          );
        }
        this.master.resize(n);
        await this.settled(n, s);
        return { size: n, workers: this.serving() } satisfies ControlResults['scale'];
      }
      case 'ecv': {
        if (!this.master.setEcv(req.enabled))
          throw new Error('cluster2: ecv: the master is shutting down; ECV stays disabled');
        const { ecv } = this.master.status();
        return { enabled: ecv.enabled, since: ecv.since } satisfies ControlResults['ecv'];
      }
      case 'upgrade':
        return this.master.upgrade(req.node);
      default:
        throw new Error('unreachable');
    }
  }

  private serving(): number[] {
    return this.master
      .status()
      .workers.filter((w) => w.state === 'listening')
      .map((w) => w.pid);
  }

  /** Resolves when exactly n workers run and all listen (removed ones have exited). */
  private settled(n: number, s: net.Socket): Promise<void> {
    return new Promise((resolve, reject) => {
      const check = () => {
        const st = this.master.status();
        if (st.state === 'draining' || st.state === 'stopped')
          return done(new Error('cluster2: scale: the master is stopping'));
        if (st.size !== n) return done(new Error(`cluster2: scale: the size changed to ${st.size} meanwhile`));
        if (st.workers.length === n && st.workers.every((w) => w.state === 'listening')) done();
      };
      const done = (e?: Error) => {
        this.c.off('listening', check);
        this.c.off('died', check);
        s.off('close', gone);
        if (e) reject(e);
        else resolve();
      };
      const gone = () => done(new Error('client gone'));
      this.c.on('listening', check);
      this.c.on('died', check);
      s.once('close', gone);
      check();
    });
  }
}

/** A request line -> a request, or an error saying what is wrong with it. */
export function parseRequest(line: string): ControlRequest {
  let v: unknown;
  try {
    v = JSON.parse(line);
  } catch {
    throw new Error('cluster2: control request is not JSON');
  }
  const op = (v as { op?: unknown } | null)?.op;
  if (!CONTROL_OPS.includes(op as ControlRequest['op'])) {
    throw new Error(`cluster2: unknown control request ${JSON.stringify(op)}; known: ${CONTROL_OPS.join(', ')}`);
  }
  if (op === 'scale') {
    const { n, delta } = v as { n?: unknown; delta?: unknown };
    if ((n === undefined) === (delta === undefined) || ![n, delta].some((x) => Number.isInteger(x))) {
      throw new Error('cluster2: scale needs a whole number n (workers) or delta (more or fewer)');
    }
  }
  if (op === 'ecv' && typeof (v as { enabled?: unknown }).enabled !== 'boolean') {
    throw new Error('cluster2: ecv needs enabled: true or false');
  }
  if (
    op === 'upgrade' &&
    (v as { node?: unknown }).node !== undefined &&
    typeof (v as { node?: unknown }).node !== 'string'
  ) {
    throw new Error('cluster2: upgrade: node must be the path of a node binary');
  }
  return v as ControlRequest;
}
