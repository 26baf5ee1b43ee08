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
 * Call `fn` once the machine is quiet (`fn(true)`), or after `maxWait` ms at
 * the latest (`fn(false)`: it never was); returns a cancel function.
 */
export function whenQuiet(fn: (quiet: boolean) => void, maxWait = QUIET_MAX_WAIT_MS): () => void {
  const deadline = Date.now() + maxWait;
  const cores = os.cpus().length || 1;
  let last = cpuTimes();
  const timer = setInterval(() => {
    const now = cpuTimes();
    const total = now.total - last.total;
    const idleCores = total > 0 ? ((now.idle - last.idle) / total) * cores : cores;
    last = now;
    const quiet = idleCores >= QUIET_IDLE_CORES;
    if (quiet || Date.now() >= deadline) {
      clearInterval(timer);
      fn(quiet);
    }
  }, QUIET_INTERVAL_MS);
  return () => clearInterval(timer);
}
