import type * as net from 'node:net';

/** RFC 6455 close codes cluster2 sends. */
export const CLOSE_SERVICE_RESTART = 1012;
export const CLOSE_GOING_AWAY = 1001;

/** The longest wait for the client's close frame after cluster2 sent its own. */
const CLOSE_WAIT_MAX_MS = 1000;
/** After our end(), how long a socket may take to close before it is destroyed. */
const END_GRACE_MS = 200;

/**
 * Follows a stream of WebSocket frames (RFC 6455 §5.2) and tells whether a
 * close frame (opcode 8) went by. Fed from a frame boundary; only headers are
 * read, payloads are skipped by length.
 */
export class FrameScanner {
  sawClose = false;
  /** cluster2 sent its close frame: nothing may follow it (RFC 6455 §5.5.1). */
  sealed = false;
  private readonly head: number[] = [];
  private skip = 0;

  /** In the middle of a frame (a frame of ours must wait for its end). */
  get midFrame(): boolean {
    return this.skip > 0 || this.head.length > 0;
  }

  scan(b: Uint8Array): void {
    let i = 0;
    const n = b.length;
    while (i < n) {
      if (this.skip > 0) {
        const k = Math.min(this.skip, n - i);
        this.skip -= k;
        i += k;
        continue;
      }
      this.head.push(b[i++]);
      const h = this.head;
      if (h.length < 2) continue;
      const len7 = h[1] & 0x7f;
      const need = 2 + (len7 === 126 ? 2 : len7 === 127 ? 8 : 0) + (h[1] & 0x80 ? 4 : 0);
      if (h.length < need) continue;
      let len = len7;
      if (len7 === 126) len = (h[2] << 8) | h[3];
      else if (len7 === 127)
        len =
          h[6] * 2 ** 24 +
          (h[7] << 16) +
          (h[8] << 8) +
          h[9] +
          (h[2] * 2 ** 24 + (h[3] << 16) + (h[4] << 8) + h[5]) * 2 ** 32;
      if ((h[0] & 0x0f) === 8) this.sawClose = true;
      h.length = 0;
      this.skip = len;
    }
  }
}

/** A server's close frame (unmasked): code and a short reason. */
export function closeFrame(code: number, reason: string): Buffer {
  const r = Buffer.from(reason);
  return Buffer.concat([Buffer.from([0x88, 2 + r.length, code >> 8, code & 0xff]), r]);
}

type Chunk = string | Uint8Array;

/**
 * Follow what the app writes to a WebSocket from now on: did it send its own
 * close frame? Once cluster2 sent its close frame, the app's later frames are
 * dropped (the connection is closing; the client would ignore them).
 */
function watchOutgoing(socket: net.Socket): FrameScanner {
  const out = new FrameScanner();
  const write = socket.write;
  socket.write = function (this: net.Socket, chunk: Chunk, ...rest: unknown[]) {
    if (out.sealed) {
      const cb = rest.find((r) => typeof r === 'function') as ((err?: Error | null) => void) | undefined;
      if (cb) process.nextTick(cb);
      return true;
    }
    if (!out.sawClose)
      out.scan(
        typeof chunk === 'string'
          ? Buffer.from(chunk, typeof rest[0] === 'string' ? (rest[0] as BufferEncoding) : 'utf8')
          : chunk,
      );
    return (write as (...a: unknown[]) => boolean).call(this, chunk, ...rest);
  } as typeof socket.write;
  return out;
}

export interface WebSocketCloseOptions {
  /** The WebSocket connections open now. */
  sockets: () => Iterable<net.Socket>;
  code: number;
  reason: string;
  /** When the last close frame must be out and answered. */
  deadline: number;
  /** The app's drain handlers have settled (they close their own sockets first). */
  appDone: Promise<unknown>;
}

/**
 * cluster2's safety net for WebSockets the app leaves open when its worker
 * drains: each gets a close frame (unless the app sent one), spread evenly
 * over the drain window so clients do not reconnect as a herd, then its
 * socket is ended once the client answered with its close frame (or after a
 * short wait). The spreading starts when the app's handlers have settled, or
 * halfway through the window at the latest, and ends a short wait before the
 * deadline. Returns a function that stops it.
 */
export function closeWebSockets(o: WebSocketCloseOptions): () => void {
  const start = Date.now();
  const window = Math.max(0, o.deadline - start);
  const wait = Math.min(CLOSE_WAIT_MAX_MS, Math.floor(window / 5));
  const end = o.deadline - wait;
  const frame = closeFrame(o.code, o.reason);
  const scanners = new Map<net.Socket, FrameScanner>();
  for (const s of o.sockets()) scanners.set(s, watchOutgoing(s));
  const pending = (): net.Socket[] => {
    const left: net.Socket[] = [];
    for (const s of o.sockets()) {
      let sc = scanners.get(s);
      // Upgraded after the drain began: followed from now on.
      if (!sc) scanners.set(s, (sc = watchOutgoing(s)));
      if (!s.destroyed && !s.writableEnded && !sc.sawClose) left.push(s);
    }
    return left;
  };
  let timer: NodeJS.Timeout | undefined;
  let stopped = false;
  const step = () => {
    if (stopped) return;
    const left = pending();
    const now = Date.now();
    if (left.length === 0) {
      // One more look at `end`: a WebSocket upgraded meanwhile (a resize lets the worker accept a while).
      if (now < end) timer = setTimeout(step, end - now);
      return;
    }
    // Close one now; the others at even intervals up to `end`.
    const s = left[0];
    const sc = scanners.get(s)!;
    if (sc.midFrame) {
      // The app is half-way through writing a frame: ours goes right after it.
      timer = setTimeout(step, 1);
      return;
    }
    sendClose(s, sc, frame, wait);
    timer = setTimeout(step, Math.max(0, left.length > 1 ? (end - now) / (left.length - 1) : end - now));
  };
  const begin = () => {
    if (stopped) return;
    clearTimeout(timer);
    const left = pending().length;
    // The first close one interval in: the app has had its turn.
    const first = left > 0 ? Math.max(0, (end - Date.now()) / left) : 0;
    timer = setTimeout(step, first);
  };
  timer = setTimeout(begin, Math.max(0, window / 2 - wait));
  o.appDone.then(begin, begin);
  return () => {
    stopped = true;
    clearTimeout(timer);
  };
}

/** Send our close frame, wait for the client's (or `wait` ms), then end the socket. */
function sendClose(s: net.Socket, sc: FrameScanner, frame: Buffer, wait: number): void {
  sc.sawClose = true;
  s.write(frame);
  sc.sealed = true;
  const incoming = new FrameScanner();
  const finish = () => {
    clearTimeout(waitTimer);
    s.off('data', onData);
    if (!s.destroyed) {
      s.end();
      setTimeout(() => s.destroy(), END_GRACE_MS).unref();
    }
  };
  const onData = (d: Buffer) => {
    incoming.scan(d);
    if (incoming.sawClose) setImmediate(finish); // let the app's library see the close first
  };
  const waitTimer = setTimeout(finish, wait);
  s.on('data', onData);
  s.once('close', () => clearTimeout(waitTimer));
}
