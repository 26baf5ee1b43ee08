/* eslint-disable no-control-regex -- these tests look for raw terminal escapes in the CLI's output */
// Nothing in the pids directory is trusted for its name (issue #17): planted,
// stale and linked pid files, spoofed masters, shared directories, full disks.
// A real second local user plays the attacker where it takes one.
import t from 'tap';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as readline from 'node:readline';
import { EXIT_CANTCREAT } from '../dist/shared/exit-codes.js';
import { writePidFile } from '../dist/shared/pids-dir.js';
import { alive, FIXTURES, killLeftovers, startApp, tmpdir, until } from './helpers/cluster';
import { CLI, CLI_APP, run } from './helpers/cli';
import { asOther, otherUid, OTHER_USER, sharedDir, skipReason, spawnAsOther } from './helpers/second-user';

const NOT_RUNNING = 3;
type Tap = { teardown(fn: () => unknown): void };

/** A live node process that is not cluster2: what a planted pid file would make root signal. */
function victim(t: Tap): ChildProcess {
  const p = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1e6)'], { stdio: 'ignore' });
  t.teardown(() => {
    try {
      p.kill('SIGKILL');
    } catch {
      /* gone */
    }
  });
  return p;
}

/** Start a fake master (test/fixtures/fake-master.js) as `who`; resolves with its pid. */
async function fakeMaster(t: Tap, dir: string, mode: 'evil' | 'silent', who: 'root' | 'other'): Promise<number> {
  const script = path.join(sharedDir('c2fake-'), 'fake-master.js');
  fs.copyFileSync(path.join(FIXTURES, 'fake-master.js'), script);
  fs.chmodSync(script, 0o644);
  const p =
    who === 'other'
      ? spawnAsOther([process.execPath, script, dir, mode])
      : spawn(process.execPath, [script, dir, mode], { stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  let pid = 0;
  t.teardown(() => killLeftovers(dir, pid ? [pid] : [], p.pid));
  pid = await new Promise<number>((resolve, reject) => {
    readline.createInterface({ input: p.stdout! }).once('line', (l) => resolve(Number(l)));
    p.once('exit', (code) => reject(new Error(`the fake master exited ${code}`)));
  });
  return pid;
}

t.test('a pid file planted by another user does not make root signal its process', async (t) => {
  const why = skipReason();
  if (why) return void t.skip(why, () => {});
  const dir = sharedDir('c2pids-', 0o1777);
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const v = victim(t);
  const planted = path.join(dir, `master.${v.pid}.pid`);
  t.equal(asOther(['sh', '-c', `echo ${v.pid} > ${planted}`]).status, 0, `${OTHER_USER} plants ${planted}`);
  for (const cmd of ['stop', 'shutdown']) {
    const r = await run([cmd, '--pids', dir, '--timeout', '5']);
    t.equal(r.code, NOT_RUNNING, `cluster2 ${cmd}: no master (${r.stderr.trim()})`);
    t.match(r.stderr, `ignoring ${planted}: it is owned by uid ${otherUid()}`, 'a warning names the file and why');
  }
  const { Cluster } = await import('../dist/index.js');
  await t.rejects(
    new Cluster({ pids: dir }).shutdown(),
    /no running master/,
    'shutdown() from a script: no master either',
  );
  t.ok(alive(v.pid!), 'the victim was not signalled');
});

t.test('a stale pid file whose pid now belongs to another process is not trusted (pid reuse)', async (t) => {
  const dir = tmpdir();
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const v = victim(t);
  // What a SIGKILLed master of an earlier version, or one that ran before the pid was reused, leaves.
  const stale = path.join(dir, `master.${v.pid}.pid`);
  fs.writeFileSync(stale, `${v.pid}\n1\n`);
  const r = await run(['stop', '--pids', dir, '--timeout', '5']);
  t.equal(r.code, NOT_RUNNING, r.stderr);
  t.match(r.stderr, /is not the one that wrote it/);
  t.notOk(fs.existsSync(stale), 'removed: it is stale');
  t.ok(alive(v.pid!), 'the process that has the pid now was not signalled');
  // Content that does not match the name.
  fs.writeFileSync(path.join(dir, `master.${v.pid}.pid`), '1\n');
  t.match((await run(['stop', '--pids', dir])).stderr, /its content does not match its name/);
  t.ok(alive(v.pid!));
});

t.test('a pid file is never written through a symbolic link', async (t) => {
  const dir = tmpdir();
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const target = path.join(dir, 'victim.conf');
  fs.writeFileSync(target, 'precious\n');
  const pid = process.pid + 100000;
  fs.symlinkSync(target, path.join(dir, `worker.${pid}.pid`));
  const file = writePidFile(dir, 'worker', pid);
  t.equal(fs.readFileSync(target, 'utf8'), 'precious\n', 'the link target is untouched');
  t.ok(fs.lstatSync(file).isFile(), 'the pid file is a regular file of its own');
  t.equal(fs.readFileSync(file, 'utf8').split('\n')[0], String(pid));
});

t.test(
  'a pids directory cluster2 creates is 0700; one other users may write and that is not ours is refused (73)',
  async (t) => {
    const parent = tmpdir();
    t.teardown(() => fs.rmSync(parent, { recursive: true, force: true }));
    const app = await startApp(t, { opts: { pids: path.join(parent, 'pids'), noWorkers: 1 } });
    t.equal(fs.statSync(app.pids).mode & 0o777, 0o700);
    process.kill(app.pid, 'SIGTERM');
    t.equal((await app.exited).code, 0);

    const why = skipReason();
    if (why) return void t.skip(why, () => {});
    const shared = path.join(sharedDir('c2shared-', 0o1777), 'pids');
    t.equal(
      asOther(['sh', '-c', `mkdir ${shared} && chmod 1777 ${shared}`]).status,
      0,
      `${OTHER_USER} made ${shared}, mode 1777`,
    );
    const r = await run(['start', CLI_APP, '--no-mon-port', '--port', '0', '--pids', shared], { timeout: 30_000 });
    t.teardown(() => killLeftovers(shared));
    t.equal(r.code, EXIT_CANTCREAT, r.stderr);
    t.match(r.stderr, /^cluster2: the pids directory .* is writable by other users and not owned by this user/);
    t.same(fs.readdirSync(shared), [], 'nothing written there');
  },
);

t.test('a pids directory owned by another user is refused by a root master, even with mode 0755 (73)', async (t) => {
  const why = skipReason();
  if (why) return void t.skip(why, () => {});
  // Its owner cannot be kept out by the mode: it may chmod, remove or swap whatever root puts there.
  const dir = path.join(sharedDir('c2owned-', 0o1777), 'pids');
  t.equal(asOther(['sh', '-c', `mkdir ${dir} && chmod 755 ${dir}`]).status, 0, `${OTHER_USER} made ${dir}, mode 0755`);
  t.teardown(() => killLeftovers(dir));
  for (const cluster of [[], ['--no-cluster']]) {
    const r = await run(['start', CLI_APP, '--no-mon-port', '--port', '0', '--pids', dir, ...cluster], {
      timeout: 30_000,
    });
    t.equal(r.code, EXIT_CANTCREAT, `${cluster.join(' ') || 'cluster'}: ${r.stderr}`);
    t.match(
      r.stderr,
      new RegExp(
        `^cluster2: the pids directory ${dir} is owned by uid ${otherUid()}, neither this user \\(uid 0\\) nor root: ` +
          'refused whatever its mode',
      ),
    );
    t.ok(r.stderr.trim().split('\n').length === 1, 'one line');
    t.same(fs.readdirSync(dir), [], 'nothing written there');
  }
});

t.test('a user who may not write the pids directory: exit 73 naming it', async (t) => {
  const why = skipReason();
  if (why) return void t.skip(why, () => {});
  const dir = sharedDir('c2rootpids-', 0o755); // root's, not writable by the other user
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const r = asOther([process.execPath, CLI, 'start', CLI_APP, '--no-mon-port', '--port', '0', '--pids', dir]);
  t.equal(r.status, EXIT_CANTCREAT, r.stderr);
  t.match(r.stderr, `cluster2: cannot write in the pids directory ${dir}: EACCES`);
});

t.test(
  'a master posed by another user (own pid file, 0777 socket) is ignored: no spoofed status, no hung reload',
  async (t) => {
    const why = skipReason();
    if (why) return void t.skip(why, () => {});
    const dir = sharedDir('c2pids-', 0o1777);
    t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
    const evil = await fakeMaster(t, dir, 'evil', 'other');
    const st = await run(['status', '--pids', dir, '--timeout', '5']);
    t.equal(st.code, NOT_RUNNING, st.stderr);
    t.notMatch(st.stdout + st.stderr, /\u001b|\u009b/, 'no escape reached the terminal');
    t.match(st.stderr, `ignoring ${path.join(dir, `master.${evil}.pid`)}`);
    const silentDir = sharedDir('c2pids-', 0o1777);
    t.teardown(() => fs.rmSync(silentDir, { recursive: true, force: true }));
    await fakeMaster(t, silentDir, 'silent', 'other');
    const started = Date.now();
    const rl = await run(['reload', '--pids', silentDir], { timeout: 60_000 });
    t.equal(rl.code, NOT_RUNNING, `reload: no master, at once (${rl.stderr.trim()})`);
    t.ok(Date.now() - started < 50_000, 'did not wait for the 120 s default');
  },
);

t.test('text from a master is printed with control characters escaped', async (t) => {
  // A fake master that passes every check (root's own, in root's directory): its status text is still escaped.
  const dir = tmpdir();
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  await fakeMaster(t, dir, 'evil', 'root');
  const st = await run(['status', '--pids', dir]);
  t.equal(st.code, 0, st.stderr);
  t.notMatch(st.stdout, /[\u0000-\u0009\u000b-\u001f\u007f-\u009f]/, 'no control character but the newlines');
  t.match(st.stdout, 'running\\u001b]0;pwned\\u0007\\u001b[2J', 'shown escaped');
  t.notMatch(st.stdout, /^master 1 fake line/m, 'a newline in a value does not start a line');
  const json = await run(['status', '--pids', dir, '--json']);
  t.notMatch(json.stdout, /[\u007f-\u009f\u001b]/);
  t.equal(JSON.parse(json.stdout)[0].strategy, 'reuseport\u009b31m', 'the JSON stays valid and exact');
});

/** A 64 KiB tmpfs, unmounted at the end; or why there can be none. */
function smallDisk(t: Tap): string | { skip: string } {
  if (process.getuid?.() !== 0) return { skip: 'needs root, to mount a small tmpfs' };
  const mnt = tmpdir('c2full-');
  const mounted = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=64k', 'tmpfs', mnt]);
  if (mounted.status !== 0) return { skip: `cannot mount a tmpfs: ${mounted.stderr}` };
  t.teardown(() => {
    spawnSync('umount', ['-l', mnt]);
    fs.rmSync(mnt, { recursive: true, force: true });
  });
  return mnt;
}

/** Fill the disk; the error code that stopped the writes. */
function fill(mnt: string): string | undefined {
  const fd = fs.openSync(path.join(mnt, 'fill'), 'w');
  try {
    for (;;) fs.writeSync(fd, Buffer.alloc(4096));
  } catch (e) {
    return (e as NodeJS.ErrnoException).code;
  } finally {
    fs.closeSync(fd);
  }
}

t.test('a full disk under the pids directory: exit 73 naming the file, no empty pid file left', async (t) => {
  const mnt = smallDisk(t);
  if (typeof mnt !== 'string') return void t.skip(mnt.skip, () => {});
  const pids = path.join(mnt, 'pids');
  fs.mkdirSync(pids, { mode: 0o700 });
  t.equal(fill(mnt), 'ENOSPC', 'the disk is full');
  const r = await run(['start', CLI_APP, '--no-mon-port', '--port', '0', '--pids', pids], { timeout: 30_000 });
  t.teardown(() => killLeftovers(pids));
  t.equal(r.code, EXIT_CANTCREAT, r.stderr);
  t.match(r.stderr, new RegExp(`^cluster2: cannot write ${pids}/master\\.\\d+\\.pid: ENOSPC\\n$`));
  t.same(fs.readdirSync(pids), [], 'no empty pid file, no socket left');
});

t.test('a worker pid file that cannot be written later is a warning; the cluster serves on', async (t) => {
  const mnt = smallDisk(t);
  if (typeof mnt !== 'string') return void t.skip(mnt.skip, () => {});
  const app = await startApp(t, { opts: { pids: path.join(mnt, 'pids'), noWorkers: 1 } });
  fill(mnt);
  const [w] = app.workers();
  app.send('resize 2'); // a new worker, and no file removed to make room for its pid file
  const warning = await app.waitFor('warning', (e) => /cannot write .*worker\.\d+\.pid: ENOSPC/.test(e.args[0]));
  t.match(warning.args[0], 'the worker serves without it');
  await until(
    () => app.events.some((e) => e.ev === 'listening' && e.args[0] !== w),
    20_000,
    'the new worker to listen',
  );
  t.equal(app.workers().length, 2);
  t.ok(alive(app.pid), 'the master serves on');
  t.notOk(
    fs.readdirSync(app.pids).some((f) => f.endsWith('.pid') && fs.statSync(path.join(app.pids, f)).size === 0),
    'no empty pid file',
  );
});
