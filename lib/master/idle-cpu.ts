import * as os from 'node:os';

/**
 * When the machine is quiet: the master forks the usual spare (after a
 * recycle, a respawn or a start) only when at least QUIET_IDLE_CORES of CPU
 * were idle over the last QUIET_INTERVAL_MS, so its boot does not take CPU
 * from workers serving a load spike; under a load that never lets up, after
 * QUIET_MAX_WAIT_MS all the same.
 */

/** Cores' worth of idle CPU that make the machine quiet. */
export const QUIET_IDLE_CORES = 0.5;
/**
 * Cores' worth of idle CPU that leave room for a spare's JIT warm-up (0.5-0.8
 * s of CPU over about 2 s: lib/worker/warm-up) besides its boot; on a
 * machine of one core, three quarters of it.
 */
export const WARM_IDLE_CORES = 1;
export const QUIET_INTERVAL_MS = 200;
export const QUIET_MAX_WAIT_MS = 5000;

/** CPU time (ms) idle and in all, summed over the cores. */
function cpuTimes(): { idle: number; total: number } {
  let idle = 0;
  let total = 0;
  for (const { times: t } of os.cpus()) {
    idle += t.idle;
    total += t.user + t.nice + t.sys + t.idle + t.irq;
  }
  return { idle, total };
}

/**
 * Call `fn` once the machine is quiet, or after `maxWait` ms at the latest;
 * `fn(roomy)`: true when so much was idle that a warm-up fits too
 * (WARM_IDLE_CORES), false when it never was; returns a cancel function.
 */
export function whenQuiet(fn: (roomy: boolean) => void, maxWait = QUIET_MAX_WAIT_MS): () => void {
  const deadline = Date.now() + maxWait;
  const cores = os.cpus().length || 1;
  let last = cpuTimes();
  const timer = setInterval(() => {
    const now = cpuTimes();
    const total = now.total - last.total;
    const idleCores = total > 0 ? ((now.idle - last.idle) / total) * cores : cores;
    last = now;
    if (idleCores >= QUIET_IDLE_CORES || Date.now() >= deadline) {
      clearInterval(timer);
      fn(idleCores >= Math.min(WARM_IDLE_CORES, cores * 0.75));
    }
  }, QUIET_INTERVAL_MS);
  return () => clearInterval(timer);
}
