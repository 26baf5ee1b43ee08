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

/** What the control server asks of the master (lib/master/master.ts). */
export interface Controlled {
  status(): MasterStatus;
  /** Any operation but status; what it does depends on the master's state (lib/master/lifecycle.ts). */
  request(req: Exclude<ControlRequest, { op: 'status' }> & { origin: 'control' }): Promise<unknown>;
}

/** A request line longer than this is refused (a request is a few dozen bytes). */
const MAX_REQUEST = 4096;
/** How long a client may take to send its request line. */
const REQUEST_TIMEOUT_MS = 10_000;

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
      // The answer goes out synchronously as the master exits (process.exit runs no more callbacks),
      // or, when the master passed the request on (an upgrade handed over), with the new master's answer.
      const onExit = (code: number) => this.answer(s, { ok: true, result: { exitCode: code } });
      this.c.once('exit', onExit);
      s.once('close', () => this.c.off('exit', onExit));
      this.master.request({ op: req.op, origin: 'control' }).then(
        (r) => {
          if (r && typeof r === 'object' && 'exitCode' in r) this.answer(s, { ok: true, result: r });
        },
        (e: Error) => this.answer(s, { ok: false, error: e.message }),
      );
      return;
    }
    this.run(req, s).then(
      (result) => {
        // An upgrade of this master is answered once its own workers are gone (it retired), in
        // the 'retired' event itself: a master that is not the keeper exits right after it.
        if (req.op === 'upgrade' && (result as ControlResults['upgrade']).from === process.pid)
          this.c.once('retired', () => this.answer(s, { ok: true, result }));
        else this.answer(s, { ok: true, result });
      },
      (e: Error) => this.answer(s, { ok: false, error: e.message }),
    );
  }

  private async run(req: Exclude<ControlRequest, { op: 'shutdown' | 'stop' }>, s: net.Socket): Promise<unknown> {
    if (req.op === 'status') return this.master.status();
    if (req.op === 'scale') {
      const gone = new Promise<never>((_, reject) => s.once('close', () => reject(new Error('client gone'))));
      gone.catch(() => {});
      return Promise.race([this.master.request({ ...req, origin: 'control' }), gone]);
    }
    return this.master.request({ ...req, origin: 'control' });
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
