// No stray processes (issue #17): every reuseport worker leads its own process
// group, and stop, shutdown and the master's death end the group, so nothing
// a worker started outlives the cluster.
import t from 'tap';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { alive, startApp, tmpdir, until } from './helpers/cluster';

type Tap = { teardown(fn: () => unknown): void };

/** The pids the workers' own children wrote, once there are n. */
async function children(t: Tap, log: string, n: number): Promise<number[]> {
  const read = () => {
    try {
      return fs.readFileSync(log, 'utf8').split('\n').filter(Boolean).map(Number);
    } catch {
      return [];
    }
  };
  t.teardown(() => {
    for (const pid of read()) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        /* gone */
      }
    }
  });
  return until(() => (read().length >= n ? read() : null), 20_000, `${n} children`);
}

const pgrp = (pid: number) => {
  const s = fs.readFileSync(`/proc/${pid}/stat`, 'latin1');
  return Number(s.slice(s.lastIndexOf(')') + 2).split(' ')[2]);
};

for (const how of ['stop (SIGQUIT)', 'shutdown (SIGTERM)', 'the master SIGKILLed'] as const) {
  t.test(`${how}: what a worker started goes too`, async (t) => {
    const log = path.join(tmpdir(), 'children');
    const app = await startApp(t, { opts: { strategy: 'reuseport', noWorkers: 2 }, env: { C2_CHILD_LOG: log } });
    const kids = await children(t, log, 2);
    for (const w of app.workers()) t.equal(pgrp(w), w, `worker ${w} leads its own process group`);
    t.ok(kids.every(alive), 'the children run');
    process.kill(app.pid, how.startsWith('stop') ? 'SIGQUIT' : how.startsWith('shutdown') ? 'SIGTERM' : 'SIGKILL');
    await app.exited;
    await until(() => kids.every((k) => !alive(k)), 20_000, 'the children to be gone');
    t.pass('no child outlived the cluster');
    if (how.startsWith('shutdown')) {
      t.ok(
        app.events.filter((e) => e.ev === 'died').every((e) => e.args[1] === 0),
        'the workers still exit 0 after a drain',
      );
    }
  });
}
