// Option pidFile (a fixed-name master pid file) and the JSON log lines' level and msg.
import t from 'tap';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { levelOf } from '../dist/cli/output.js';
import { holdPidFile, releasePidFile } from '../dist/shared/pid-file.js';
import { resolveOptions } from '../dist/shared/options.js';
import { startApp, tmpdir, until } from './helpers/cluster';
import { startCli } from './helpers/cli';

const read = (f: string) => {
  try {
    return fs.readFileSync(f, 'utf8');
  } catch {
    return null;
  }
};

t.test("pidFile: the master's pid, the same through a reload, removed at exit; a stale one replaced", async (t) => {
  const file = path.join(tmpdir(), 'run', 'app.pid');
  fs.mkdirSync(path.dirname(file));
  fs.writeFileSync(file, '999999\n'); // left by a master that was SIGKILLed
  const app = await startApp(t, { opts: { pidFile: file } });
  t.equal(read(file), `${app.pid}\n`, "written whole: the master's pid and a newline");
  const before = app.workers();
  app.send('reload');
  await app.waitFor('reload-ok', undefined, 60_000);
  t.not(app.workers().sort().join(), before.sort().join(), 'the workers were replaced');
  t.equal(read(file), `${app.pid}\n`, "still the master's pid after the reload");
  t.same(fs.readdirSync(path.dirname(file)), ['app.pid'], 'no temporary file left');
  process.kill(app.pid, 'SIGTERM');
  t.equal((await app.exited).code, 0);
  t.equal(read(file), null, 'removed at exit');
});

t.test("pidFile with cluster: false, and a successor's file left alone", async (t) => {
  const file = path.join(tmpdir(), 'single.pid');
  const app = await startApp(t, { opts: { cluster: false, pidFile: file } });
  t.equal(read(file), `${app.pid}\n`);
  process.kill(app.pid, 'SIGTERM');
  await app.exited;
  t.equal(read(file), null, 'removed at exit');

  const other = path.join(tmpdir(), 'x.pid');
  holdPidFile(other, 12345);
  fs.writeFileSync(other, '67890\n'); // a new master took over the name
  releasePidFile(other, 12345);
  t.equal(read(other), '67890\n', "not removed: it is the successor's");
  releasePidFile(other, 67890);
  t.equal(read(other), null);
});

t.test('pidFile is checked like every option', async (t) => {
  t.throws(
    () => resolveOptions({ pidFile: '' }),
    new TypeError('cluster2: option "pidFile" is ""; it must be a non-empty string'),
  );
  t.equal(resolveOptions({ pidFile: 'run/x.pid' }).pidFile, path.resolve('run/x.pid'));
  t.equal(resolveOptions({}).pidFile, undefined);
});

t.test('JSON log lines carry level and msg', async (t) => {
  t.equal(levelOf('forked', [1]), 'info');
  t.equal(levelOf('died', [1, 0, null]), 'info', 'a clean exit');
  t.equal(levelOf('died', [1, null, 'SIGKILL']), 'warn');
  t.equal(levelOf('warning', ['x']), 'warn');
  t.equal(levelOf('reloadFailed', ['x']), 'warn');
  t.equal(levelOf('exit', [0]), 'info');
  t.equal(levelOf('exit', [70]), 'error');
  const file = path.join(tmpdir(), 'cli.pid');
  const s = await startCli(t, { args: ['--pid-file', file] });
  t.equal(read(file), `${s.pid}\n`, '--pid-file');
  const ready = s.lines.find((l) => l.event === 'ready')!;
  t.match(ready, { level: 'info', msg: `ready: 2 worker(s) listening on port ${s.port} (${ready.strategy})` });
  for (const l of s.lines) t.match(l, { level: /^(info|warn|error)$/, msg: String }, `${l.event} has level and msg`);
  const victim = s.lines.find((l) => l.event === 'listening')!.worker as number;
  process.kill(victim, 'SIGKILL');
  const died = await s.waitFor('died', (l) => l.worker === victim);
  t.match(died, { level: 'warn', msg: `worker ${victim} exited (signal SIGKILL)`, code: undefined, signal: 'SIGKILL' });
  process.kill(s.pid, 'SIGTERM');
  await s.exited;
  await until(() => read(file) === null, 5000, 'the pid file to go');
  t.pass('--pid-file removed at exit');
});
