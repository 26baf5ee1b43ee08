import * as net from 'node:net';
import { acceptorOf } from './bridge';
import { Instrumented } from './instrument';

export interface DrainOptions {
  /** Cut whatever is still open after this many ms. */
  gracefulTimeout: number;
  /** A kept-alive HTTP connection is closed once it has been idle this long. */
  idleGrace?: number;
  /** Keep accepting this long first (a socket just taken out of rotation may still have a queue). */
  acceptFor?: number;
  /** Stay at least this long after accepting stopped, even with no connection left. */
  settle?: number;
}

/** How often a draining worker looks at its idle keep-alive connections. */
const SWEEP_MS = 50;
/**
 * Long enough that a client writing its next request is seen doing it, and is
 * answered with `Connection: close` instead of meeting a closing socket. 200 ms
 * was too short for a client starved of CPU (a busy 2-core machine: a
 * closed-loop client left its socket idle that long, then wrote into the close
 * and got ECONNRESET); a socket that really is idle only waits longer.
 */
export const IDLE_GRACE_MS = 1000;

/**
 * Drain a server without losing a request:
 *  1. stop accepting (net.Server#close: http.Server#close would also cut idle
 *     keep-alive sockets at once, the race where clients lose requests);
 *  2. every response from now on carries `Connection: close`, so a busy
 *     connection closes after its current response;
 *  3. a kept-alive connection with nothing in flight is closed only after it
 *     has been idle for `idleGrace`, so no client writes into a closing socket;
 *  4. upgraded connections and plain net sockets get until gracefulTimeout;
 *  5. at gracefulTimeout whatever remains is cut.
 * Resolves true when everything closed by itself, false when it had to cut.
 */
export function drain(inst: Instrumented, o: DrainOptions): Promise<boolean> {
  const grace = o.idleGrace ?? IDLE_GRACE_MS;
  inst.draining = true;
  return new Promise((resolve) => {
    const { server } = inst;
    const sockets = inst.live();
    let accepting = true;
    let settled = !o.settle;
    // What accepts for the server: itself, or under Bun its acceptor (lib/worker/bridge.ts).
    const acceptor = acceptorOf(server);
    const stopAccepting = () => {
      accepting = false;
      // net.Server's close, not http.Server's: that one would also cut idle kept-alive sockets
      // at once. A server that only wraps a net.Server has its own close (and may not say
      // whether it listens).
      if (acceptor instanceof net.Server) {
        const close = () => net.Server.prototype.close.call(acceptor);
        // A listen under way (node:cluster asks the master first) is closed as soon as it completes.
        if (acceptor.listening) close();
        else acceptor.once('listening', close);
      } else if ((acceptor as { listening?: boolean }).listening !== false) {
        (acceptor as { close(): unknown }).close();
      }
      if (!settled)
        setTimeout(() => {
          settled = true;
          check();
        }, o.settle);
      check();
    };
    let sweep: NodeJS.Timeout | undefined;
    /** When a socket was first seen idle, and how many bytes it had read then. */
    const idleSince = new Map<net.Socket, { since: number; read: number }>();
    const stillIdle = (s: net.Socket) => Instrumented.idle(s) && idleSince.get(s)?.read === s.bytesRead;
    let done = false;
    const finish = (clean: boolean) => {
      if (done) return;
      done = true;
      server.off('connection', watch);
      clearInterval(sweep);
      clearTimeout(cut);
      resolve(clean);
    };
    const check = () => {
      if (sockets.size === 0 && !accepting && settled) finish(true);
    };
    const cut = setTimeout(() => {
      for (const s of sockets) s.destroy();
      finish(false);
    }, o.gracefulTimeout);
    // Watch every open socket, and those accepted meanwhile, until it closes
    // (the list has dropped a socket by the time its other 'close' listeners run).
    const watch = (s: net.Socket) => s.once('close', check);
    server.on('connection', watch);
    for (const s of sockets) watch(s);
    if (inst.http) {
      // Responses already under way: ask for close if their headers are not out yet.
      for (const s of sockets) {
        const res = Instrumented.response(s);
        if (res && !res.headersSent) res.setHeader('Connection', 'close');
      }
      sweep = setInterval(() => {
        const now = Date.now();
        const due: net.Socket[] = [];
        for (const s of sockets) {
          const seen = idleSince.get(s);
          if (!Instrumented.idle(s) || (seen && seen.read !== s.bytesRead)) idleSince.delete(s);
          else if (!seen) idleSince.set(s, { since: now, read: s.bytesRead });
          else if (now - seen.since >= grace) due.push(s);
        }
        // Timers run before the poll phase: if this process was starved, a
        // request may sit unread in the socket. Look again after a poll phase
        // has read it (setImmediate runs after poll) before closing.
        if (due.length)
          setImmediate(() => {
            for (const s of due) if (stillIdle(s)) s.destroy();
          });
      }, SWEEP_MS);
    }
    if (o.acceptFor) setTimeout(stopAccepting, o.acceptFor);
    else stopAccepting();
  });
}
