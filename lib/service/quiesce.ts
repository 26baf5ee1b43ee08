import * as fs from 'node:fs';
import { sys } from '../shared/native';
import { procNetTcp } from './port-probe';

/**
 * Before a shutdown closes the app's listening sockets: make sure every
 * connection the kernel already accepted on them reaches a worker, so that
 * none is reset when the last copy of a listening socket closes (Linux resets
 * whatever is still in a closing listener's accept queue).
 *
 * The master holds a copy of every listening socket of the app: the slot
 * sockets (reuseport), node:cluster's listening socket (round-robin: the
 * master accepts and hands connections over; shared: the workers accept from
 * it). On each:
 *  1. a socket filter drops new SYNs: no new handshake starts, the ones under
 *     way still complete (native stopHandshakes), so the accept queue can only
 *     shrink; a client whose SYN was dropped sends it again about 1 s later
 *     and finds the port closed (refused, never reset), or a new master;
 *  2. the workers keep accepting as usual (reuseport, shared), or the master
 *     keeps handing over (round-robin), until every accept queue is empty, the
 *     master holds no accepted connection on the app port, and no handshake is
 *     half done on it (SYN_RECV: a client whose final ACK came when the queue
 *     was full believes it is connected and has sent its request; the kernel
 *     completes it when the client sends again, while the listener is open);
 *  3. only then does the shutdown tell the workers to drain: what they
 *     accepted is served, with `Connection: close`.
 * Linux with the addon only; elsewhere (or without the addon) it does nothing.
 */

/** Handshakes under way (SYN-ACK sent) get at least this long to complete before the queues are read. */
export const QUIESCE_SETTLE_MS = 30;
/** How often the queues are read meanwhile. */
const POLL_MS = 5;
/** How often half-done handshakes are counted (a read of /proc/net/tcp costs more). */
const SYN_RECV_POLL_MS = 25;
/**
 * Give up when nothing left the queues for this long: nobody accepts there (a
 * worker that died, or workers that drained at once on a SIGTERM sent to the
 * whole process group). Generous: on a starved machine a busy worker may take
 * a second or more between two turns of its event loop.
 */
export const QUIESCE_STALL_MS = 5000;

export interface AppSockets {
  /** Listening sockets on the app port: fd -> accept queue length. */
  listening: Map<number, number>;
  /** Accepted connections on the app port still in the master (round-robin's hand-off). */
  held: number;
}

/** The master's own descriptors for the app port, found in /proc/self/fd. */
export function appSockets(port: number): AppSockets {
  const out: AppSockets = { listening: new Map(), held: 0 };
  if (!sys.can.quiesce) return out;
  let fds: string[];
  try {
    fds = fs.readdirSync('/proc/self/fd');
  } catch {
    return out;
  }
  for (const name of fds) {
    const fd = Number(name);
    try {
      const queue = sys.acceptQueue(fd);
      if (queue === null || sys.localPort(fd) !== port) continue;
      if (queue >= 0) out.listening.set(fd, queue);
      else out.held++;
    } catch {
      // Closed meanwhile (the readdir's own descriptor, a socket just handed over).
    }
  }
  return out;
}

/** Half-done handshakes (SYN_RECV) on the port, from /proc/net/tcp{,6}. */
export function synRecv(port: number): number {
  let n = 0;
  for (const f of procNetTcp()) {
    // f[1]: local address:port in hex; f[3]: state, 03 = SYN_RECV.
    if (f.length > 3 && f[3] === '03' && parseInt(f[1].slice(f[1].lastIndexOf(':') + 1), 16) === port) n++;
  }
  return n;
}

export interface QuiesceOptions {
  /** False once no process is left to accept: stop waiting. */
  accepting?: () => boolean;
  /**
   * True (a master): accepted connections on the app port in this process are
   * hand-offs still to reach a worker (round-robin). False (single): they are
   * the connections this process serves, left to the drain.
   */
  handsOver?: boolean;
  /** Told when it gives up after QUIESCE_STALL_MS with connections left and none leaving. */
  warn?: (message: string) => void;
}

export function canQuiesce(): boolean {
  return sys.can.quiesce;
}

/**
 * Stop new handshakes on the app port's listening sockets, then resolve once
 * their accept queues are empty and the master holds no accepted connection,
 * or at `deadline`, or when nothing left the queues for QUIESCE_STALL_MS, or
 * when `accepting()` says no process is left to accept.
 * A stall, with what was left, is told to `o.warn`.
 */
export async function quiesce(port: number, deadline: number, o: QuiesceOptions = {}): Promise<void> {
  const accepting = o.accepting ?? (() => true);
  const handsOver = o.handsOver ?? true;
  if (!canQuiesce() || port === 0) return;
  for (const fd of appSockets(port).listening.keys()) {
    try {
      sys.stopHandshakes(fd);
    } catch {
      /* closed meanwhile */
    }
  }
  const start = Date.now();
  let last = Infinity;
  let progress = start;
  let wait = QUIESCE_SETTLE_MS;
  for (;;) {
    await new Promise((r) => setTimeout(r, wait));
    const s = appSockets(port);
    // A process that serves what it accepts (single) holds its open connections, not a hand-off.
    if (!handsOver) s.held = 0;
    let queued = 0;
    for (const q of s.listening.values()) queued += q;
    // Counted only once the queues are empty: what is left then are the half-done ones.
    const half = queued + s.held === 0 ? synRecv(port) : 0;
    wait = queued + s.held === 0 ? SYN_RECV_POLL_MS : POLL_MS;
    const now = Date.now();
    const left = queued + s.held + half;
    if (left < last) progress = now;
    last = left;
    const stalled = now - progress >= QUIESCE_STALL_MS;
    if (left === 0 || now >= deadline || stalled || !accepting()) {
      if (stalled && left > 0)
        o.warn?.(
          `cluster2: shutdown: nothing left the accept queues for ${QUIESCE_STALL_MS} ms; draining with ` +
            `${queued} connection(s) queued, ${s.held} held, ${half} handshake(s) half done`,
        );
      return;
    }
  }
}
