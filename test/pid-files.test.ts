import t from 'tap';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { findPids } from '../dist/shared/pids-dir.js';
import { nth, startApp, tmpdir, until } from './helpers/cluster';

const list = (dir: string) => {
  try {
    return fs.readdirSync(dir).sort();
  } catch {
    return [];
  }
};

t.test('master.<pid>.pid and worker.<pid>.pid hold their pids and go when the process goes', async (t) => {
  const app = await startApp(t);
  const [w1, w2] = app.workers();
  // Besides the pid files: the master's control socket.
  t.same(
    list(app.pids),
    [`master.${app.pid}.pid`, `master.${app.pid}.sock`, `worker.${w1}.pid`, `worker.${w2}.pid`].sort(),
  );
  // The pid, then its start time (pid-trust.ts).
  const firstLine = (f: string) => fs.readFileSync(path.join(app.pids, f), 'utf8').split('\n')[0];
  t.equal(firstLine(`master.${app.pid}.pid`), String(app.pid));
  t.equal(firstLine(`worker.${w1}.pid`), String(w1));
  process.kill(w1, 'SIGKILL');
  const forked = await nth(app, 'forked', 3);
  await app.waitFor('listening', (e) => e.args[0] === forked.args[0]);
  await until(() => !list(app.pids).includes(`worker.${w1}.pid`), 5000, "the killed worker's file to go");
  t.ok(list(app.pids).includes(`worker.${forked.args[0]}.pid`), 'the new worker has its file');
  process.kill(app.pid, 'SIGTERM');
  t.equal((await app.exited).code, 0);
  t.same(list(app.pids), [], 'nothing left after shutdown');
});

t.test('stale pid files of dead processes are ignored and cleaned', async (t) => {
  const dir = tmpdir();
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  fs.writeFileSync(path.join(dir, 'master.999999.pid'), '999999\n');
  fs.writeFileSync(path.join(dir, 'worker.999998.pid'), '999998\n');
  fs.writeFileSync(path.join(dir, 'master.1.pid'), '1\n0\n'); // pid 1 is alive, but not the process that wrote this
  t.same(findPids(dir, 'master'), []);
  t.same(list(dir), ['worker.999998.pid'], 'stale master files removed');
});
