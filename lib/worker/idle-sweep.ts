import type * as net from 'node:net';

/** How often the sweep looks, as a share of the timeout; never more than once per SWEEP_MAX_MS. */
const SWEEP_SHARE = 10;
const SWEEP_MIN_MS = 10;
const SWEEP_MAX_MS = 1000;

/** How often a sweep of `timeout` ms runs. */
export function sweepEvery(timeout: number): number {
  return Math.min(SWEEP_MAX_MS, Math.max(SWEEP_MIN_MS, Math.floor(timeout / SWEEP_SHARE)));
}

/**
 * The idle timeout (option `timeout`) of every connection of a worker, with
 * one timer for all of them instead of one per socket: Node's per-socket
 * timer (server.timeout, socket.setTimeout) costs a timer object and a
 * callback bound per connection and a re-arm on every read and write, about
 * 3% of a keep-alive request's CPU. Every `sweepEvery(timeout)` ms this looks
 * at the bytes each socket has read and written: a socket whose counts have
 * not moved for `timeout` ms is idle. A socket is closed between `timeout`
 * and `timeout` plus two sweeps after its last byte, never before.
 * `skip` leaves a socket alone (an upgraded one: its protocol keeps its own time).
 */
export function sweepIdle(
  sockets: Iterable<net.Socket>,
  timeout: number,
  idle: (socket: net.Socket) => void,
  skip: (socket: net.Socket) => boolean,
): () => void {
  // Kept beside the sockets, not on them: a property added to a socket in
  // mid-life gives it another hidden class, and the ICs of every read of a
  // socket on the request path go polymorphic (+35% CPU per keep-alive request).
  const seen = new WeakMap<net.Socket, { bytes: number; since: number }>();
  const timer = setInterval(() => {
    const now = Date.now();
    for (const s of sockets) {
      if (s.destroyed || skip(s)) continue;
      const bytes = s.bytesRead + (s.bytesWritten ?? 0);
      const last = seen.get(s);
      if (last === undefined) seen.set(s, { bytes, since: now });
      else if (last.bytes !== bytes) {
        last.bytes = bytes;
        last.since = now;
      } else if (now - last.since >= timeout) {
        idle(s);
      }
    }
  }, sweepEvery(timeout));
  timer.unref();
  return () => clearInterval(timer);
}
