// Every start failure prints one line on stderr and exits with its own code:
// none hangs, none exits 0 (issue #14's start bugs, fixed with #17).
import t from 'tap';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import {
  EXIT_CANTCREAT,
  EXIT_CRASH_LOOP,
  EXIT_NOHOST,
  EXIT_NOPERM,
  EXIT_PORT_BUSY,
} from '../dist/shared/exit-codes.js';
import { FIXTURES, killLeftovers, tmpdir } from './helpers/cluster';
import { CLI, CLI_APP, run } from './helpers/cli';
import { asOther, sharedDir, skipReason } from './helpers/second-user';

const APP = path.join(FIXTURES, 'app.js');

/** Run test/fixtures/app.js with these options to its end (killed after 30 s: a hang fails the test). */
function runApp(t: { teardown(fn: () => unknown): void }, opts: Record<string, unknown>, script = APP) {
  return new Promise<{ code: number | null; signal: string | null; stderr: string; stdout: string }>((resolve) => {
    const p = spawn(process.execPath, [script], {
      env: { ...process.env, C2_OPTS: JSON.stringify({ port: 0, monPort: false, noWorkers: 1, ...opts }) },
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    });
    t.teardown(() => killLeftovers(typeof opts.pids === 'string' ? opts.pids : '/nonexistent', [p.pid!], p.pid));
    let stderr = '';
    let stdout = '';
    p.stderr!.on('data', (d) => {
      stderr += d;
    });
    p.stdout!.on('data', (d) => {
      stdout += d;
    });
    const timer = setTimeout(() => p.kill('SIGKILL'), 30_000);
    p.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stderr, stdout });
    });
  });
}

const oneLine = (s: string) => s.trim().split('\n').length === 1;

for (const cluster of [true, false]) {
  t.test(`a pids directory that cannot be created: one line, exit 73 (cluster: ${cluster})`, async (t) => {
    const r = await runApp(t, { pids: '/proc/nope', cluster });
    t.equal(r.code, EXIT_CANTCREAT, r.stderr);
    t.match(r.stderr, /cluster2: cannot create the pids directory \/proc\/nope: ENOENT/);
    t.ok(oneLine(r.stderr), 'one line');
  });

  t.test(`a host that does not resolve: one line, exit 68 (cluster: ${cluster})`, async (t) => {
    const r = await runApp(t, { pids: path.join(tmpdir(), 'pids'), host: 'no-such-host.invalid', cluster });
    t.equal(r.code, EXIT_NOHOST, r.stderr);
    t.match(r.stderr, /cluster2: host "no-such-host.invalid" does not resolve/);
    t.ok(oneLine(r.stderr), 'one line');
  });
}

t.test('port equal to monPort is a RangeError in the constructor', async (t) => {
  const { Cluster } = await import('../dist/index.js');
  t.throws(() => new Cluster({ port: 3000, monPort: 3000 }), {
    name: 'RangeError',
    message: /option "monPort" is 3000, the same as "port"/,
  });
  t.doesNotThrow(() => new Cluster({ port: 0, monPort: 0 }), 'port 0 picks two ports');
  t.doesNotThrow(() => new Cluster({ port: 3000, monPort: false }));
});

t.test('whoever awaits listen() gets the failure (a StartError with its exit code) and decides', async (t) => {
  const dir = tmpdir();
  const script = `const C = require(${JSON.stringify(path.join(__dirname, '..'))});
    new C({ pids: '/proc/nope', port: 0, monPort: false }).listen(() => {})
      .catch((e) => { console.log(JSON.stringify({ name: e.name, exitCode: e.exitCode })); process.exit(5); });`;
  const r = await new Promise<{ code: number | null; out: string; err: string }>((resolve) => {
    const p = spawn(process.execPath, ['-e', script], { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    p.stdout!.on('data', (d) => {
      out += d;
    });
    p.stderr!.on('data', (d) => {
      err += d;
    });
    const timer = setTimeout(() => p.kill('SIGKILL'), 30_000);
    p.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, out, err });
    });
  });
  t.equal(r.code, 5, r.err);
  t.same(JSON.parse(r.out), { name: 'StartError', exitCode: EXIT_CANTCREAT });
  t.equal(r.err, '', 'nothing printed by cluster2: the caller handles it');
});

t.test('cluster2 start: the same codes', async (t) => {
  const pids = path.join(tmpdir(), 'pids');
  const [nope, host] = await Promise.all([
    run(['start', CLI_APP, '--no-mon-port', '--port', '0', '--pids', '/proc/nope'], { timeout: 30_000 }),
    run(['start', CLI_APP, '--no-mon-port', '--port', '0', '--pids', pids, '--host', 'no-such-host.invalid'], {
      timeout: 30_000,
    }),
  ]);
  t.teardown(() => killLeftovers(pids));
  t.equal(nope.code, EXIT_CANTCREAT, nope.stderr);
  t.match(nope.stderr, /^cluster2: cannot create the pids directory \/proc\/nope: ENOENT\n$/);
  t.equal(host.code, EXIT_NOHOST, host.stderr);
  t.match(host.stderr, /^cluster2: host "no-such-host.invalid" does not resolve/);
});

t.test(
  'an app that never calls back at boot: listenTimeout bounds the first start (exit 70, with the reason)',
  async (t) => {
    const dir = tmpdir();
    const app = path.join(dir, 'never.js');
    fs.writeFileSync(app, 'module.exports = () => new Promise(() => {});\n');
    const pids = path.join(dir, 'pids');
    t.teardown(() => killLeftovers(pids));
    const r = await run(
      ['start', app, '--no-mon-port', '--port', '0', '--workers', '1', '--listen-timeout', '1000', '--pids', pids],
      { timeout: 90_000 },
    );
    t.equal(r.code, EXIT_CRASH_LOOP, r.stderr);
    t.match(
      r.stderr,
      /workers died 5 times in a row before listening \(last: worker \d+ did not listen within 1000 ms\)/,
    );
  },
);

for (const timer of [false, true]) {
  t.test(
    `cluster: false, an app that never calls back${timer ? ' (a timer keeps its loop alive)' : ''}: ` +
      'listenTimeout bounds the start (exit 70, with the reason)',
    async (t) => {
      const dir = tmpdir();
      const app = path.join(dir, 'never.js');
      fs.writeFileSync(app, `${timer ? 'setInterval(() => {}, 1000);\n' : ''}module.exports = (cb) => {};\n`);
      const pids = path.join(dir, 'pids');
      t.teardown(() => killLeftovers(pids));
      const args = ['start', app, '--no-cluster', '--no-mon-port', '--port', '0', '--pids', pids];
      const r = await run([...args, '--listen-timeout', '1000'], { timeout: 60_000 });
      t.equal(r.code, EXIT_CRASH_LOOP, r.stderr);
      t.match(r.stderr, /^cluster2: the app did not listen within listenTimeout \(1000 ms\): its listen callback gave/);
      t.ok(oneLine(r.stderr), 'one line');
      t.same(fs.readdirSync(pids), [], 'no pid file left');
      // The API, from a script that does not await listen(): the same.
      const api = await runApp(t, { cluster: false, pids, listenTimeout: 1000 }, path.join(FIXTURES, 'never-app.js'));
      t.equal(api.code, EXIT_CRASH_LOOP, api.stderr);
      t.match(api.stderr, /did not listen within listenTimeout \(1000 ms\)/);
    },
  );
}

/** A port nothing listens on now. */
function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

t.test('an address that is not this machine, or a monitor host that does not resolve: 68, never 69', async (t) => {
  const [port, mon] = [await freePort(), await freePort()];
  const pids = path.join(tmpdir(), 'pids');
  t.teardown(() => killLeftovers(pids));
  const base = ['start', CLI_APP, '--workers', '1', '--pids', pids];
  const cases: [string, string[], RegExp][] = [
    [
      'host 192.0.2.1',
      ['--host', '192.0.2.1', '--port', String(port), '--no-mon-port'],
      /^cluster2: cannot bind port \d+ on 192\.0\.2\.1: the address 192\.0\.2\.1 is not on this machine \(EADDRNOTAVAIL\)$/,
    ],
    [
      'host 192.0.2.1, port 0',
      ['--host', '192.0.2.1', '--port', '0', '--no-mon-port'],
      /^cluster2: cannot bind port 0 on 192\.0\.2\.1: the address 192\.0\.2\.1 is not on this machine/,
    ],
    [
      'monitor host that does not resolve',
      ['--port', String(port), '--mon-port', String(mon), '--mon-host', 'no-such-host.invalid'],
      /^cluster2: monitor host "no-such-host\.invalid" does not resolve \((ENOTFOUND|EAI_AGAIN|EAI_FAIL)\)$/,
    ],
    [
      'monitor host 192.0.2.1',
      ['--port', String(port), '--mon-port', String(mon), '--mon-host', '192.0.2.1'],
      /^cluster2: cannot bind port \d+ on 192\.0\.2\.1: the address 192\.0\.2\.1 is not on this machine/,
    ],
    [
      'metrics on 192.0.2.1',
      ['--port', String(port), '--no-mon-port', '--metrics', `192.0.2.1:${mon}`],
      /^cluster2: the metrics server cannot listen on 192\.0\.2\.1:\d+: the address 192\.0\.2\.1 is not on this machine \(EADDRNOTAVAIL\)$/,
    ],
  ];
  for (const cluster of [[], ['--no-cluster']]) {
    for (const [name, args, line] of cases) {
      const r = await run([...base, ...args, ...cluster], { timeout: 30_000 });
      const what = `${name}${cluster.length ? ' (--no-cluster)' : ''}`;
      t.equal(r.code, EXIT_NOHOST, `${what}: exit 68 (${r.stderr.trim()})`);
      t.match(r.stderr.trim().split('\n').pop(), line, `${what}: names the address`);
    }
  }
  // 69 stays for a busy port, and only for it.
  const holder = net.createServer();
  await new Promise<void>((r) => holder.listen(mon, '127.0.0.1', r));
  t.teardown(() => holder.close());
  const busy = await run([...base, '--port', String(port), '--mon-port', String(mon)], { timeout: 30_000 });
  t.equal(busy.code, EXIT_PORT_BUSY, `the monitor port busy: 69 (${busy.stderr.trim()})`);
});

t.test('bindExitCode: 69 (portBusyExitCode) for EADDRINUSE alone', async (t) => {
  const { bindExitCode } = await import('../dist/shared/bind-errors.js');
  t.equal(bindExitCode('EADDRINUSE', 69), EXIT_PORT_BUSY);
  t.equal(bindExitCode('EADDRINUSE', 75), 75, 'portBusyExitCode changes it');
  for (const code of ['EADDRNOTAVAIL', 'ENOTFOUND', 'EAI_AGAIN', 'EAFNOSUPPORT'])
    t.equal(bindExitCode(code, 69), EXIT_NOHOST, code);
  t.equal(bindExitCode('EACCES', 69), EXIT_NOPERM, 'EACCES: no permission (77)');
  t.equal(bindExitCode('EMFILE', 69), 1, 'anything else: 1');
  t.equal(bindExitCode(undefined, 69), 1);
});

t.test('a privileged port as an unprivileged user: 77 (no permission), not 69', async (t) => {
  const why = skipReason();
  if (why) return void t.skip(why, () => {});
  let start = 1024;
  try {
    start = Number(fs.readFileSync('/proc/sys/net/ipv4/ip_unprivileged_port_start', 'utf8'));
  } catch {
    // not Linux
  }
  if (start <= 80) return void t.skip('every port from 80 up is unprivileged here', () => {});
  const pids = path.join(sharedDir('c2perm-', 0o1777), 'pids');
  t.teardown(() => killLeftovers(pids));
  for (const cluster of [[], ['--no-cluster']]) {
    const r = asOther([
      process.execPath,
      CLI,
      'start',
      CLI_APP,
      '--no-mon-port',
      '--port',
      '80',
      '--pids',
      pids,
      ...cluster,
    ]);
    t.equal(r.status, EXIT_NOPERM, r.stderr);
    t.match(r.stderr, /^cluster2: cannot bind port 80 on all interfaces: permission denied .*\(EACCES\)$/m);
  }
});

t.test('cluster: false, the port taken between the check and the listen: 69, the busy line', async (t) => {
  // The app's own callback takes the port first (what another program starting at that moment does).
  const port = await freePort();
  const dir = tmpdir();
  const app = path.join(dir, 'racer.js');
  fs.writeFileSync(
    app,
    "const http = require('node:http'); const net = require('node:net');\n" +
      `module.exports = () => new Promise((resolve) => net.createServer().listen(${port}, '127.0.0.1', () =>\n` +
      "  resolve(http.createServer((req, res) => res.end('x')))));\n",
  );
  const pids = path.join(dir, 'pids');
  t.teardown(() => killLeftovers(pids));
  const r = await run(
    ['start', app, '--no-cluster', '--host', '127.0.0.1', '--port', String(port), '--no-mon-port', '--pids', pids],
    { timeout: 30_000 },
  );
  t.equal(r.code, EXIT_PORT_BUSY, r.stderr);
  t.equal(r.stderr.trim().split('\n').pop(), `cluster2: port ${port} on 127.0.0.1 is busy (EADDRINUSE)`);
});
