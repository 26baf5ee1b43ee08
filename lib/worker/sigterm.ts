import { isToWorker } from '../shared/ipc';

/** Beyond drainDelay: how long a worker that got SIGTERM waits to hear that its master shuts down. */
export const SIGTERM_WAIT_MS = 1000;

/**
 * What a worker does on SIGTERM. systemd's default KillMode (and `kill` of a
 * process group) signals the master and every worker at once: the master then
 * shuts down (it tells its workers so: 'stopping') and tells each worker when
 * to drain, once every connection the kernel accepted has reached one (see
 * master/quiesce). A worker that drained at once would close its listener
 * first. So while the master is there, a worker that got SIGTERM waits: for
 * its drain message when the master shuts down, or, when the master says
 * nothing within drainDelay + SIGTERM_WAIT_MS (the signal was for this worker
 * alone), it drains by itself. Without a master it drains at once.
 */
export function onSigterm(drain: () => void, drainDelay: number): () => void {
  let stopping = false;
  process.on('message', (m: unknown) => {
    if (isToWorker(m) && m.c2 === 'stopping') stopping = true;
  });
  let timer: NodeJS.Timeout | undefined;
  return () => {
    if (!process.connected) return drain();
    if (stopping || timer) return;
    timer = setTimeout(() => {
      if (!stopping) drain();
    }, drainDelay + SIGTERM_WAIT_MS);
  };
}
