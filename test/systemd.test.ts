// systemd: Type=notify messages on NOTIFY_SOCKET (received here by a
// stand-in datagram socket, test/fixtures/notify-receiver.py), and socket
// activation (LISTEN_FDS) with systemd-socket-activate and with a socket this
// test holds across a restart of the app.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import * as readline from 'node:readline';
import t, { type Test } from 'tap';
import { EXIT_CONFIG } from '../dist/shared/exit-codes.js';
import { CLI, CLI_APP, run, startCli, statusOf } from './helpers/cli';
import { alive, FIXTURES, killLeftovers, tmpdir, until } from './helpers/cluster';
import { request, startLoad } from './helpers/http';
import { npxApp } from './helpers/npx-app';

const python = spawnSync('python3', ['--version']).status === 0;
const activate = fs.existsSync('/usr/bin/systemd-socket-activate') ? '/usr/bin/systemd-socket-activate' : null;

/** A datagram socket at `address` that records what it receives. */
async function receiver(t: Test, address: string): Promise<{ messages: string[] }> {
  const p = spawn('python3', [path.join(FIXTURES, 'notify-receiver.py'), address], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  t.teardown(() => {
    p.kill('SIGKILL');
  });
  const messages: string[] = [];
  let bound = false;
  readline.createInterface({ input: p.stdout! }).on('line', (l) => {
    if (l === 'bound') bound = true;
    else messages.push(JSON.parse(l));
  });
  await until(() => bound, 20_000, 'the notify receiver to bind');
  return { messages };
}

/** Index of the first message at or after `from` holding `line`. */
function at(messages: string[], line: string, from = 0): number {
  for (let i = from; i < messages.length; i++) if (messages[i].split('\n').includes(line)) return i;
  return -1;
}

for (const form of ['abstract', 'path'] as const) {
  t.test(
    `notify (${form} socket): READY, RELOADING, READY, upgraded, WATCHDOG, STOPPING in order`,
    { skip: python ? false : 'no python3' },
    async (t) => {
      const address =
        form === 'abstract' ? `@cluster2-test-${process.pid}-${Date.now()}` : path.join(tmpdir('c2sd-'), 'notify');
      const rx = await receiver(t, address);
      const m = await startCli(t, { env: { NOTIFY_SOCKET: address, WATCHDOG_USEC: '400000' } });
      const msgs = rx.messages;
      await until(() => at(msgs, 'READY=1') >= 0, 20_000, 'READY=1');
      t.match(msgs[at(msgs, 'READY=1')], /STATUS=2 workers up, strategy \S+, port \d+/, 'a STATUS line with READY=1');
      await until(() => at(msgs, 'WATCHDOG=1') >= 0, 20_000, 'WATCHDOG=1');
      const reload = await run(['reload', '--pids', m.pids], { timeout: 120_000 });
      t.equal(reload.code, 0, reload.stderr);
      const reloading = at(msgs, 'RELOADING=1');
      t.ok(reloading > at(msgs, 'READY=1'), 'RELOADING=1 after READY=1');
      t.match(msgs[reloading], /MONOTONIC_USEC=\d+/, 'with MONOTONIC_USEC');
      await until(() => at(msgs, 'READY=1', reloading) > reloading, 10_000, 'READY=1 after the reload');
      const up = await run(['upgrade', '--pids', m.pids, '--json'], { timeout: 120_000 });
      t.equal(up.code, 0, up.stderr);
      const neo = JSON.parse(up.stdout).to as number;
      const mainpid = msgs.findIndex((x) => x.startsWith(`STATUS=upgraded: master ${neo} serves`));
      t.ok(mainpid > reloading, 'STATUS=upgraded after the reload');
      // The started process stays through the upgrade (it keeps the new master): the main pid does not change.
      t.equal(at(msgs, `MAINPID=${neo}`), -1, 'never MAINPID=<new master>');
      t.ok(at(msgs, `MAINPID=${m.pid}`) >= 0, 'MAINPID=<the started process>');
      const before = msgs.length;
      await until(() => msgs.slice(before).some((x) => x === 'WATCHDOG=1'), 20_000, 'WATCHDOG=1 from the new master');
      t.equal(at(msgs, 'STOPPING=1'), -1, 'the old master did not say STOPPING=1');
      const down = await run(['shutdown', '--pids', m.pids], { timeout: 120_000 });
      t.equal(down.code, 0, down.stderr);
      await until(() => at(msgs, 'STOPPING=1') > mainpid, 10_000, 'STOPPING=1');
      t.ok(!alive(neo), 'the new master exited');
    },
  );
}

const systemdNotify = spawnSync('systemd-notify', ['--help']).status === 0;
t.test(
  'without the addon, systemd-notify sends READY=1 and STOPPING=1',
  { skip: python && systemdNotify ? false : 'no python3 or systemd-notify' },
  async (t) => {
    const address = `@cluster2-test-js-${process.pid}-${Date.now()}`;
    const rx = await receiver(t, address);
    const m = await startCli(t, { env: { NOTIFY_SOCKET: address, CLUSTER2_NATIVE: '0' } });
    await until(() => at(rx.messages, 'READY=1') >= 0, 20_000, 'READY=1 through systemd-notify');
    const down = await run(['shutdown', '--pids', m.pids], { timeout: 120_000 });
    t.equal(down.code, 0, down.stderr);
    await until(() => at(rx.messages, 'STOPPING=1') > at(rx.messages, 'READY=1'), 20_000, 'STOPPING=1 after READY=1');
  },
);

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

t.test(
  'systemd-socket-activate starts the app on the activated sockets (app and monitor)',
  { skip: activate ? false : 'no systemd-socket-activate' },
  async (t) => {
    const [port, monPort] = [await freePort(), await freePort()];
    const pids = path.join(tmpdir('c2sa-'), 'pids');
    const p = spawn(
      activate!,
      [
        '-l',
        `127.0.0.1:${port}`,
        '-l',
        `127.0.0.1:${monPort}`,
        '--fdname=app:monitor',
        process.execPath,
        CLI,
        'start',
        CLI_APP,
        '--port',
        String(port),
        '--mon-port',
        String(monPort),
        '--workers',
        '2',
        '--pids',
        pids,
        '--strategy',
        'reuseport',
      ],
      { stdio: ['ignore', 'ignore', 'pipe'], detached: true },
    );
    let err = '';
    p.stderr!.on('data', (d) => {
      err += d;
    });
    t.teardown(() => killLeftovers(pids, [p.pid!], p.pid));
    await until(() => err.includes('Listening on'), 20_000, 'systemd-socket-activate to listen');
    // The first connection starts the service; it is answered once the workers are up.
    const first = await request(port, '/', { timeout: 30_000 });
    t.equal(first.status, 200, 'the first connection is served');
    t.equal(
      p.pid,
      (JSON.parse((await request(monPort, '/status')).body) as { pid: number }).pid,
      'the monitor is served on the passed socket by the master (LISTEN_PID)',
    );
    t.match(err, /passed by systemd \(socket activation\).*"round-robin"/, 'reuseport says what it does instead');
  },
);

/** `cluster2 start` with a socket at descriptor 3, as systemd passes it (LISTEN_PID set by the shell that execs node). */
function activated(fd: number, pids: string, strategy: string): ChildProcess {
  const cmd = `LISTEN_PID=$$ LISTEN_FDS=1 exec "${process.execPath}" "${CLI}" start "${CLI_APP}" --port 0 --no-mon-port --workers 2 --pids "${pids}" --strategy ${strategy} --log-format json`;
  return spawn('sh', ['-c', cmd], { stdio: ['ignore', 'ignore', 'pipe', fd], detached: true });
}

for (const strategy of ['shared', 'round-robin']) {
  t.test(`${strategy}: restarting an app on a socket held outside refuses no connection`, async (t) => {
    const { native } = require('../dist/shared/native.js');
    t.ok(native, 'the addon (the test holds the socket through it)');
    const fd: number = native.listen('127.0.0.1', 0, 511, false);
    const port: number = native.localPort(fd);
    t.teardown(() => native.close(fd));
    const pids = path.join(tmpdir('c2sa-'), 'pids');
    const started: number[] = [];
    t.teardown(() => killLeftovers(pids, started));
    const start = async () => {
      const p = activated(fd, pids, strategy);
      started.push(p.pid!);
      let err = '';
      p.stderr!.on('data', (d) => {
        err += d;
      });
      await until(() => err.includes('"event":"ready"') || p.exitCode !== null, 30_000, `the app to start (${err})`);
      t.equal(p.exitCode, null, `started (${err})`);
      return p;
    };
    const a = await start();
    const load = startLoad(port, { connections: 12, fresh: true });
    await load.served(300, 30_000);
    const gone = new Promise((r) => a.once('exit', r));
    a.kill('SIGTERM');
    await gone;
    await start();
    await load.served(300, 30_000);
    const r = await load.stop();
    t.equal(r.failed, 0, `0 failed of ${r.ok + r.failed} (${JSON.stringify(r.errors)})`);
  });
}

/**
 * Start `args` under systemd-socket-activate on 127.0.0.1:port; its first connection starts the
 * command. It passes on only PATH: the test runner's variables (its coverage hooks) go with -E.
 */
function underActivation(t: Test, port: number, args: string[], cwd?: string) {
  const keep = Object.entries(process.env).filter(([k]) => /^(NODE_OPTIONS$|TAP|_TAPJS_)/.test(k));
  const env = keep.flatMap(([k, v]) => ['-E', `${k}=${v}`]);
  const p = spawn(activate!, ['-l', `127.0.0.1:${port}`, ...env, ...args], {
    cwd,
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  let err = '';
  p.stderr!.on('data', (d) => {
    err += d;
  });
  p.stdout!.on('data', () => {});
  const exited = new Promise<number | null>((resolve) => p.once('exit', (code) => resolve(code)));
  return { p, stderr: () => err, exited };
}

/** Open a connection to port (it starts the activated command) and hold it until `until` settles. */
async function knock(port: number, until: Promise<unknown>): Promise<void> {
  const s = net.connect(port, '127.0.0.1');
  s.on('error', () => {});
  await until;
  s.destroy();
}

t.test(
  "the docs' old line, systemd-socket-activate -l PORT npx cluster2 start APP: refused (78), saying why",
  { skip: activate ? false : 'no systemd-socket-activate' },
  async (t) => {
    // npx (npm exec) is what systemd-socket-activate execs, so LISTEN_PID names npm; npm and Node
    // close every descriptor above 2 in what they start: the socket never reaches the master.
    const dir = npxApp();
    const port = await freePort();
    const pids = path.join(dir, 'pids');
    const a = underActivation(t, port, ['npx', 'cluster2', 'start', CLI_APP, '--pids', pids, '--workers', '1'], dir);
    t.teardown(() => killLeftovers(pids, [a.p.pid!], a.p.pid));
    await until(() => a.stderr().includes('Listening on'), 20_000, 'systemd-socket-activate to listen');
    // Before the fix the master bound port 3000 and served on: give it 60 s to exit, not forever.
    let timer: NodeJS.Timeout | undefined;
    const ended = Promise.race([
      a.exited,
      new Promise<string>((r) => {
        timer = setTimeout(() => r('still running after 60 s'), 60_000);
      }),
    ]);
    await knock(port, ended);
    const code = await ended;
    clearTimeout(timer);
    const line = a
      .stderr()
      .split('\n')
      .find((l) => l.startsWith('cluster2: '));
    t.match(
      line,
      /^cluster2: LISTEN_FDS=1 is set for LISTEN_PID=\d+ \(npm exec cluster2 start .*\), an ancestor of this master .*but descriptor 3 is not a socket here: the sockets did not reach this master \(npx, npm and Node close every descriptor above 2 in what they start\); run cluster2 itself under the socket activation \(node_modules\/\.bin\/cluster2 start APP\)$/,
      'one line saying why, and what to run instead',
    );
    t.equal(code, EXIT_CONFIG, "npx exits with the master's code");
    t.same(fs.existsSync(pids) ? fs.readdirSync(pids) : [], [], 'no master started, nothing left');
  },
);

t.test(
  'systemd-socket-activate -l PORT node_modules/.bin/cluster2 start APP (the line of docs/upgrade-and-systemd.md): served on the port',
  { skip: activate ? false : 'no systemd-socket-activate' },
  async (t) => {
    const dir = npxApp();
    const port = await freePort();
    const pids = path.join(dir, 'pids');
    const bin = path.join(dir, 'node_modules', '.bin', 'cluster2');
    const a = underActivation(t, port, [bin, 'start', CLI_APP, '--pids', pids, '--workers', '1', '--no-mon-port'], dir);
    t.teardown(() => killLeftovers(pids, [a.p.pid!], a.p.pid));
    await until(() => a.stderr().includes('Listening on'), 20_000, 'systemd-socket-activate to listen');
    const r = await request(port, '/', { timeout: 30_000 });
    t.equal(r.status, 200, 'the first connection is served, on the activated port');
    t.notMatch(a.stderr(), /LISTEN_FDS=1 is set/, 'LISTEN_PID is the master itself: nothing to say');
    process.kill(a.p.pid!, 'SIGTERM');
    t.equal(await a.exited, 0);
  },
);

t.test(
  'LISTEN_PID naming a shell that started the master and waits for it (sh -c): adopted, and said at start',
  { skip: activate ? false : 'no systemd-socket-activate' },
  async (t) => {
    const port = await freePort();
    const pids = path.join(tmpdir('c2sa-'), 'pids');
    // Not the last command of the shell: it forks node and waits, rather than exec'ing it.
    const cmd = `"${process.execPath}" "${CLI}" start "${CLI_APP}" --pids "${pids}" --workers 1 --no-mon-port; echo done`;
    const a = underActivation(t, port, ['sh', '-c', cmd]);
    t.teardown(() => killLeftovers(pids, [a.p.pid!], a.p.pid));
    await until(() => a.stderr().includes('Listening on'), 20_000, 'systemd-socket-activate to listen');
    const r = await request(port, '/', { timeout: 30_000 });
    t.equal(r.status, 200, 'served on the activated port');
    t.match(
      a.stderr(),
      new RegExp(
        `cluster2: socket activation: LISTEN_FDS=1 is set for LISTEN_PID=${a.p.pid} \\(sh -c .*\\), ` +
          'an ancestor of this master, which started it and waits for it; its sockets are adopted\\n',
      ),
      'said at start',
    );
    const [st] = await statusOf(pids);
    t.not(st.pid, a.p.pid, 'the master is not the LISTEN_PID process');
    process.kill(st.pid, 'SIGTERM');
    t.equal(await a.exited, 0, 'the shell went on when the master exited 0');
  },
);

t.test('LISTEN_PID naming a process that is not an ancestor: refused (78), saying why', async (t) => {
  const { native } = require('../dist/shared/native.js');
  const other = spawn('sleep', ['60'], { stdio: 'ignore' });
  t.teardown(() => other.kill('SIGKILL'));
  const fd: number | undefined = native?.listen('127.0.0.1', 0, 511, false);
  t.teardown(() => fd !== undefined && native.close(fd));
  const pids = path.join(tmpdir('c2sa-'), 'pids');
  t.teardown(() => killLeftovers(pids));
  const p = spawn(process.execPath, [CLI, 'start', CLI_APP, '--port', '0', '--no-mon-port', '--pids', pids], {
    env: { ...process.env, LISTEN_FDS: '1', LISTEN_PID: String(other.pid) },
    stdio: ['ignore', 'ignore', 'pipe', fd ?? 'ignore'],
  });
  let err = '';
  p.stderr!.on('data', (d) => {
    err += d;
  });
  const code = await new Promise((resolve) => p.once('exit', resolve));
  t.equal(code, EXIT_CONFIG, err);
  t.equal(
    err,
    `cluster2: LISTEN_FDS=1 is set for LISTEN_PID=${other.pid}: process ${other.pid} (sleep 60), ` +
      "which is not an ancestor of this master; the sockets are that process's, not this master's\n",
  );
});

t.test('judgeListenPid: who may take the sockets', async (t) => {
  const { judgeListenPid } = require('../dist/listen/listen-pid.js');
  const none = () => new Map<number, number>();
  const self = judgeListenPid(String(process.pid), 3, 1, () => [], process.pid, none);
  t.same(self, { ok: true }, 'LISTEN_PID is this process: taken, nothing to say');
  t.match(
    judgeListenPid(undefined, 3, 1, () => [], 100, none),
    { ok: false, reason: /LISTEN_PID is not:/ },
  );
  t.match(
    judgeListenPid('abc', 3, 1, () => [], 100, none),
    { ok: false, reason: /LISTEN_PID is "abc", not a pid/ },
  );
  t.match(
    judgeListenPid('999999999', 3, 1, () => [1], 100, none),
    { ok: false, reason: /process 999999999, gone/ },
  );
  // An ancestor with another child (init, a session's shell) does not merely wait for this master.
  const busy = judgeListenPid(
    '1',
    3,
    1,
    () => [50, 1],
    100,
    () =>
      new Map([
        [1, 7],
        [50, 1],
      ]),
  );
  t.match(busy, { ok: false, reason: /but process 1 .*has 7 children: it does not merely wait for this master/ });
  // A launcher with this master as its only line of descent, whose descriptors did not arrive.
  const lost = judgeListenPid(
    '50',
    1000,
    1,
    () => [60, 50],
    100,
    () =>
      new Map([
        [50, 1],
        [60, 1],
      ]),
  );
  t.match(lost, { ok: false, reason: /LISTEN_PID=50.*through 60.*but descriptor 1000 is not open here/ });
});
