import * as fs from 'node:fs';
import { native } from '../native';

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
 *     keeps handing over (round-robin), until every accept queue is empty and
 *     the master holds no accepted connection on the app port;
 *  3. only then does the shutdown tell the workers to drain: what they
 *     accepted is served, with `Connection: close`.
 * Linux with the addon only; elsewhere (or without the addon) it does nothing.
 */

/** Handshakes under way (SYN-ACK sent) get at least this long to complete before the queues are read. */
export const QUIESCE_SETTLE_MS = 30;
/** How often the queues are read meanwhile. */
const POLL_MS = 5;

export interface AppSockets {
  /** Listening sockets on the app port: fd -> accept queue length. */
  listening: Map<number, number>;
  /** Accepted connections on the app port still in the master (round-robin's hand-off). */
  held: number;
}

/** The master's own descriptors for the app port, found in /proc/self/fd. */
export function appSockets(port: number): AppSockets {
  const out: AppSockets = { listening: new Map(), held: 0 };
  const n = native;
  if (!n?.acceptQueue) return out;
  let fds: string[];
  try {
    fds = fs.readdirSync('/proc/self/fd');
  } catch {
    return out;
  }
  for (const name of fds) {
    const fd = Number(name);
    try {
      const queue = n.acceptQueue(fd);
      if (queue === null || n.localPort(fd) !== port) continue;
      if (queue >= 0) out.listening.set(fd, queue);
      else out.held++;
    } catch {
      // Closed meanwhile (the readdir's own descriptor, a socket just handed over).
    }
  }
  return out;
}

export function canQuiesce(): boolean {
  return typeof native?.stopHandshakes === 'function' && typeof native.acceptQueue === 'function';
}

/**
 * Stop new handshakes on the app port's listening sockets, then resolve once
 * their accept queues are empty and the master holds no accepted connection,
 * or at `deadline` (a slot whose worker is gone has nobody to accept).
 * Resolves with what was left (all zero when nothing was).
 */
export async function quiesce(port: number, deadline: number): Promise<{ queued: number; held: number }> {
  if (!canQuiesce() || port === 0) return { queued: 0, held: 0 };
  for (const fd of appSockets(port).listening.keys()) {
    try { native!.stopHandshakes!(fd); } catch { /* closed meanwhile */ }
  }
  const start = Date.now();
  for (;;) {
    await new Promise((r) => setTimeout(r, Date.now() - start < QUIESCE_SETTLE_MS ? QUIESCE_SETTLE_MS : POLL_MS));
    const s = appSockets(port);
    let queued = 0;
    for (const q of s.listening.values()) queued += q;
    if ((queued === 0 && s.held === 0) || Date.now() >= deadline) return { queued, held: s.held };
  }
}
