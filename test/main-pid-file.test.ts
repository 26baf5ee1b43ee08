// Option pidFile (a fixed-name master pid file) and the JSON log lines' level and msg.
import t from 'tap';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { levelOf } from '../dist/cli/output.js';
import { holdPidFile, releasePidFile } from '../dist/service/main-pid-file.js';
import { resolveOptions } from '../dist/shared/options.js';
import { EXIT_CANTCREAT } from '../dist/shared/exit-codes.js';
import { killLeftovers, startApp, tmpdir, until } from './helpers/cluster';
import { CLI_APP, run, startCli } from './helpers/cli';
import { asOther, otherUid, OTHER_USER, sharedDir, skipReason } from './helpers/second-user';

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

t.test(
  '--pid-file in a directory others may write (sticky, like /tmp): no link planted there is written through',
  async (t) => {
    const why = skipReason();
    if (why) return void t.skip(why, () => {});
    const dir = sharedDir('c2pidfile-', 0o1777); // root's, sticky, world-writable: /tmp's kind
    t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
    const file = path.join(dir, 'app.pid');
    const victim = path.join(sharedDir('c2victim-'), 'victim.conf');
    const victim2 = path.join(path.dirname(victim), 'victim2.conf');
    fs.writeFileSync(victim, 'precious\n');
    fs.writeFileSync(victim2, 'precious too\n');
    t.teardown(() => fs.rmSync(path.dirname(victim), { recursive: true, force: true }));
    // The other user plants the names a writer could predict: <file>.<pid>.tmp for the next 3000
    // pids, each a link to a file only root may write; and the pid file itself as a link. One
    // process plants them all, so that planting uses no pid of the range.
    const last = Number(fs.readFileSync('/proc/sys/kernel/ns_last_pid', 'utf8'));
    const max = Number(fs.readFileSync('/proc/sys/kernel/pid_max', 'utf8'));
    const plant =
      `const fs = require('node:fs'); for (let i = 0; i < 3000; i++) ` +
      `fs.symlinkSync(${JSON.stringify(victim)}, ${JSON.stringify(file)} + '.' + ((${last} + i) % ${max} + 1) + '.tmp');` +
      `fs.symlinkSync(${JSON.stringify(victim2)}, ${JSON.stringify(file)});`;
    t.equal(asOther([process.execPath, '-e', plant]).status, 0, `${OTHER_USER} planted its links`);
    const pids = path.join(tmpdir(), 'pids');
    const s = await startCli(t, { pids, args: ['--pid-file', file] });
    t.equal(fs.readFileSync(victim, 'utf8'), 'precious\n', 'the target of the planted temporary names is untouched');
    t.equal(fs.readFileSync(victim2, 'utf8'), 'precious too\n', 'the target of the planted pid file is untouched');
    const st = fs.lstatSync(file);
    t.ok(st.isFile(), 'the pid file is a regular file of its own (the planted link was replaced)');
    t.equal(st.uid, 0, "owned by root, the master's user");
    t.equal(fs.readFileSync(file, 'utf8'), `${s.pid}\n`);
    t.same(
      fs.readdirSync(dir).filter((n) => !/^app\.pid\.\d+\.tmp$/.test(n)),
      ['app.pid'],
      'nothing else of ours there: no temporary file left',
    );
    process.kill(s.pid, 'SIGTERM');
    t.equal((await s.exited).code, 0);
    t.notOk(fs.existsSync(file), 'removed at exit');
  },
);

t.test("a pid file's directory owned by another user is refused, whatever its mode (73)", async (t) => {
  const why = skipReason();
  if (why) return void t.skip(why, () => {});
  const parent = sharedDir('c2pidfile-', 0o1777);
  t.teardown(() => fs.rmSync(parent, { recursive: true, force: true }));
  const dir = path.join(parent, 'run');
  t.equal(asOther(['sh', '-c', `mkdir ${dir} && chmod 755 ${dir}`]).status, 0, `${OTHER_USER} made ${dir}, mode 0755`);
  const pids = path.join(tmpdir(), 'pids');
  t.teardown(() => killLeftovers(pids));
  const r = await run(
    ['start', CLI_APP, '--no-mon-port', '--port', '0', '--pids', pids, '--pid-file', `${dir}/app.pid`],
    {
      timeout: 30_000,
    },
  );
  t.equal(r.code, EXIT_CANTCREAT, r.stderr);
  t.match(
    r.stderr,
    `cluster2: the pid file's directory ${dir} is owned by uid ${otherUid()}, neither this user (uid 0) nor root: refused`,
  );
  t.same(fs.readdirSync(dir), [], 'nothing written there');
  t.same(fs.existsSync(pids) ? fs.readdirSync(pids) : [], [], 'no pid file or socket left in pids');
});

t.test('the pid file is written through a random temporary name, and a failed write says so (73)', async (t) => {
  const dir = tmpdir();
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const file = path.join(dir, 'x.pid');
  fs.mkdirSync(file); // a directory where the file should be: the rename fails
  t.throws(() => holdPidFile(file, 4242), {
    name: 'StartError',
    exitCode: EXIT_CANTCREAT,
    message: /cannot write the pid file/,
  });
  t.same(fs.readdirSync(dir), ['x.pid'], 'the temporary file is removed');
  const ok = path.join(dir, 'ok.pid');
  holdPidFile(ok, 4242);
  t.equal(fs.readFileSync(ok, 'utf8'), '4242\n');
  fs.rmSync(ok);
  fs.symlinkSync(path.join(dir, 'elsewhere'), ok);
  fs.writeFileSync(path.join(dir, 'elsewhere'), '4242\n');
  releasePidFile(ok, 4242);
  t.ok(fs.lstatSync(ok).isSymbolicLink(), 'a link put in its place is not read through, nor removed');
  t.equal(fs.readFileSync(path.join(dir, 'elsewhere'), 'utf8'), '4242\n');
});
