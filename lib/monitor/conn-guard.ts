import type * as http from 'node:http';
import type * as net from 'node:net';

export interface GuardLimits {
  /** Connections one client address may hold. */
  perAddress: number;
  /** Connections in all. */
  total: number;
  /** A connection that has waited this long for (the headers of) a request is closed. */
  headersTimeout: number;
}

/** How often waiting connections are looked at. */
const SWEEP_MS = 1000;

/**
 * Slowloris guard for the monitor: connections are capped per client address
 * and in all, and a full table makes room by closing the oldest connection
 * that is waiting for a request (half-open, or idle between keep-alive
 * requests), never one a request is being served on. A well-behaved client,
 * which sends its request at once, always gets in, even while thousands of
 * half-open connections are held; the holders evict one another. Only when
 * every connection is busy serving is a new one refused.
 *
 * It also enforces headersTimeout itself: Node's own check (even with
 * connectionsCheckingInterval) let 5 half-open connections live on for good
 * in a test on Node 20 and 22, while it closed a lone one.
 */
export function guardConnections(server: http.Server, limits: GuardLimits): void {
  /** Every connection, by address. */
  const byAddress = new Map<string, Set<net.Socket>>();
  /** Connections waiting for a request, oldest first, with the time they began to wait: in all, and by address. */
  const waiting = new Map<net.Socket, number>();
  const waitingBy = new Map<string, Set<net.Socket>>();
  let count = 0;

  const addressOf = (s: net.Socket) => s.remoteAddress ?? '';
  const setOf = (m: Map<string, Set<net.Socket>>, a: string) => {
    let set = m.get(a);
    if (!set) m.set(a, (set = new Set()));
    return set;
  };
  const unwait = (s: net.Socket) => {
    waiting.delete(s);
    const a = addressOf(s);
    const set = waitingBy.get(a);
    if (set?.delete(s) && set.size === 0) waitingBy.delete(a);
  };
  const wait = (s: net.Socket) => {
    unwait(s);
    waiting.set(s, Date.now());
    setOf(waitingBy, addressOf(s)).add(s);
  };
  /** Close the oldest waiting connection among `from` (not `keep`); false when there is none. */
  const evict = (from: Iterable<net.Socket> | undefined, keep: net.Socket): boolean => {
    if (!from) return false;
    for (const s of from) {
      if (s === keep) continue;
      unwait(s);
      s.destroy();
      return true;
    }
    return false;
  };

  server.on('connection', (s: net.Socket) => {
    const a = addressOf(s);
    const mine = setOf(byAddress, a);
    mine.add(s);
    count++;
    wait(s);
    s.once('close', () => {
      count--;
      unwait(s);
      if (mine.delete(s) && mine.size === 0) byAddress.delete(a);
    });
    if (mine.size > limits.perAddress && !evict(waitingBy.get(a), s)) return void s.destroy();
    if (count > limits.total && !evict(waiting.keys(), s)) s.destroy();
  });
  const sweep = setInterval(() => {
    const deadline = Date.now() - limits.headersTimeout;
    for (const [s, since] of waiting) {
      if (since > deadline) break; // the rest waited less
      unwait(s);
      s.destroy();
    }
  }, SWEEP_MS);
  sweep.unref();
  server.once('close', () => clearInterval(sweep));
  server.on('request', (req: http.IncomingMessage, res: http.ServerResponse) => {
    const s = req.socket;
    unwait(s);
    // Between keep-alive requests the connection waits again (and keepAliveTimeout runs).
    res.once('finish', () => {
      if (!s.destroyed) wait(s);
    });
  });
}
