import type { Supervisor, WorkerInfo } from './supervisor';

/** How many of the last worker exits the warning names. */
const EXITS_SHOWN = 5;

/**
 * A running master with no listening worker (workers that keep exiting soon
 * after they listened, respawned with back-off) is degraded, and says so:
 * its status is 'degraded', the monitor-port ECV answers 500 WARNING, and a
 * warning names the recent exits and their codes, once per episode.
 */
export class DegradedWatch {
  private readonly exits: string[] = [];
  private warned = false;

  constructor(
    private readonly sup: Supervisor,
    running: () => boolean,
    warn: (message: string) => void,
  ) {
    sup.on('died', (w: WorkerInfo, code: number | null, signal: string | null) => {
      this.exits.push(`worker ${w.pid} ${signal ? `signal ${signal}` : `code ${code}`}`);
      if (this.exits.length > EXITS_SHOWN) this.exits.shift();
      if (this.warned || !running() || this.serving()) return;
      this.warned = true;
      warn(
        `cluster2: degraded: no worker is listening (last exits: ${this.exits.join(', ')}); respawning with back-off`,
      );
    });
    sup.on('listening', () => {
      this.warned = false;
    });
  }

  /** Some worker listens. */
  serving(): boolean {
    for (const w of this.sup.workers.values()) if (w.state === 'listening') return true;
    return false;
  }
}
