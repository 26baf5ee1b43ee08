import { findPids, isAlive } from './pidfiles';

/** How often a control client looks whether the master is gone. */
const POLL_MS = 25;

/**
 * The client side of the scripted flows: find the running masters through
 * their pid files, signal them and wait until they have exited.
 */
export async function signalMasters(pids: string, signal: NodeJS.Signals, timeout: number, what: string): Promise<number[]> {
  const masters = findPids(pids, 'master');
  if (masters.length === 0) {
    throw new Error(`cluster2: ${what}: no running master found in ${pids} (no master.<pid>.pid of a live process)`);
  }
  for (const pid of masters) {
    try { process.kill(pid, signal); } catch { /* exited meanwhile */ }
  }
  const deadline = Date.now() + timeout;
  for (;;) {
    const left = masters.filter(isAlive);
    if (left.length === 0) return masters;
    if (Date.now() > deadline) {
      throw new Error(`cluster2: ${what}: master ${left.join(', ')} did not exit within ${timeout} ms`);
    }
    await new Promise((r) => setTimeout(r, POLL_MS));
  }
}
