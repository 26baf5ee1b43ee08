import { EXIT_KILLED } from '../shared/exit-codes';
import type { Resolved } from '../shared/options';
import type { Listener } from '../listen/strategy';
import { quiesce } from '../service/quiesce';
import type { Ending } from './lifecycle';
import type { Supervisor } from './supervisor';

/** What a draining master works with. */
export interface DrainingMaster {
  o: Resolved;
  sup: Supervisor;
  listener: Listener;
  port: number;
  /** The app socket outlives this master (systemd holds it). */
  socketHeld: boolean;
}

/**
 * A master's ending by drain: ECV DISABLED (unless a new master serves now: `handedOver`),
 * drainDelay, the accept queues emptied into the workers (quiesce), every worker drains;
 * workers still there at gracefulTimeout are killed and the ending's code becomes EXIT_KILLED.
 * Resolves once every worker is gone.
 */
export async function drainOut(
  m: DrainingMaster,
  e: Ending,
  disableEcv: () => void,
  warn: (message: string) => void,
): Promise<void> {
  const { o, sup, listener } = m;
  const handedOver = e.handedOver !== undefined;
  if (!handedOver) disableEcv();
  sup.broadcast({ c2: 'stopping' });
  if (o.drainDelay && !handedOver) await new Promise((r) => setTimeout(r, o.drainDelay));
  // The socket outlives this master (a new master, or systemd, holds it): stop accepting
  // here first, so what the kernel queues waits for the next one instead of being reset.
  const settle = handedOver || m.socketHeld ? (listener.stopAccepting?.() ?? 0) : 0;
  if (settle) await new Promise((r) => setTimeout(r, settle));
  // The workers are cut at gracefulTimeout from now, however long the accept queues take to empty
  // below: the drain they are told ends then (their WebSocket closes are spread up to it).
  const cutAt = Date.now() + o.gracefulTimeout;
  const cut = setTimeout(() => {
    if (sup.workers.size > 0 && e.how === 'drain') e.code = EXIT_KILLED;
    sup.end('kill');
  }, o.gracefulTimeout);
  // Every connection the kernel already accepted reaches a worker first (see quiesce).
  // Not when the sockets outlive this master: the filter would stay on them for the next one.
  if (!handedOver && !m.socketHeld) {
    await quiesce(m.port, Date.now() + o.gracefulTimeout / 2, {
      accepting: () => sup.workers.size > 0,
      warn,
    });
  }
  // After an upgrade the service goes on (a WebSocket gets 1012 Service Restart, as at a reload).
  sup.end('drain', handedOver ? 'upgrade' : 'shutdown', cutAt);
  // The workers hold their own copies of the sockets until they close them:
  // from now on the kernel refuses new connections instead of queueing them.
  listener.close();
  await sup.empty();
  clearTimeout(cut);
}
