import { performance } from 'node:perf_hooks';

/**
 * The master's own stalls, so that the heartbeat judges the workers'
 * responsiveness and not the master's. The heartbeat ticks every `every` ms;
 * a tick that comes much later on the monotonic clock means the master
 * itself was stopped (SIGSTOP, docker pause, a VM suspend, CPU starvation),
 * and the workers' answers could not be read meanwhile. So is a jump of the
 * wall clock, which lastPong times are taken on. After either, no worker is
 * judged until it has had a full heartbeat period to answer.
 */
export class HeartbeatClock {
  private lastMono = performance.now();
  private lastWall = Date.now();
  /** Wall time from which silence counts again (0 before any stall). */
  private judgeFrom = 0;

  constructor(private readonly every: number) {}

  /** Call at each tick; true when the master (or the wall clock) was found to have stalled or jumped. */
  tick(): boolean {
    const mono = performance.now();
    const wall = Date.now();
    const lag = mono - this.lastMono - this.every;
    const jump = Math.abs(wall - this.lastWall - (mono - this.lastMono));
    this.lastMono = mono;
    this.lastWall = wall;
    if (lag <= this.every && jump <= this.every) return false;
    this.judgeFrom = wall;
    return true;
  }

  /** How long a worker has been silent, counting from its last answer or the end of the master's last stall. */
  silence(lastPong: number, now = Date.now()): number {
    return now - Math.max(lastPong, this.judgeFrom);
  }
}
