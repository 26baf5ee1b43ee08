// After a recycle, a respawn or a start, the next spare is forked when the
// machine is quiet, not while the serving workers need every core: under a
// load that never lets up, at the latest QUIET_MAX_WAIT_MS later.
import { spawn } from 'node:child_process';
import * as os from 'node:os';
import t from 'tap';
import { QUIET_MAX_WAIT_MS } from '../dist/master/idle-cpu.js';
import { alive, startApp, until } from './helpers/cluster';

/** A process per core, each spinning (a shell loop: small, however many cores): the CPU has no idle time while they run. */
function saturate(t: { teardown(fn: () => void | Promise<void>): void }): { stop(): Promise<void> } {
  const pids = Array.from(
    { length: os.availableParallelism() },
    () => spawn('sh', ['-c', 'while :; do :; done'], { stdio: 'ignore' }).pid!,
  );
  const stop = async () => {
    for (const p of pids) {
      try {
        process.kill(p, 'SIGKILL');
      } catch {
        /* gone */
      }
    }
    await until(() => pids.every((p) => !alive(p)), 5000, 'the spinners to go');
  };
  t.teardown(stop);
  return { stop };
}

t.test(
  'the spare that follows a respawn waits while every core is busy, and comes at the latest after the cap',
  async (t) => {
    const app = await startApp(t, { opts: { noWorkers: 2 } });
    const first = (await app.waitFor('spare', undefined, 30_000)).args[0];
    const cpu = saturate(t);
    const victim = app.workers().find((p) => p !== first)!;
    process.kill(victim, 'SIGKILL');
    // The dead worker's slot goes to the spare; the next spare is due once that worker is up.
    await app.waitFor('forked', (e) => e.args[0] === first, 15_000);
    await app.waitFor('listening', (e) => e.args[0] === first, 15_000);
    const mark = app.events.length;
    // A window shorter than the cap: no spare may be forked in it while the cores are busy.
    await new Promise((r) => setTimeout(r, QUIET_MAX_WAIT_MS / 5));
    t.notOk(
      app.events.slice(mark).some((e) => e.ev === 'spare'),
      'no spare forked while every core is busy',
    );
    // The load does not let up: the spare comes all the same.
    const next = await app.waitFor('spare', (e) => e.args[0] !== first, QUIET_MAX_WAIT_MS + 20_000);
    t.ok(next, `a spare (${next.args[0]}) is forked under a load that does not let up`);
    await cpu.stop();
    process.kill(app.pid, 'SIGTERM');
    t.equal((await app.exited).code, 0, 'a clean shutdown');
  },
);
