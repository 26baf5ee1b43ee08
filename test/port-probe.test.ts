// port-probe: is host:port free, and who holds it? Every probe runs twice, in a fresh node
// process with CLUSTER2_NATIVE=1 (the addon, when built) and CLUSTER2_NATIVE=0 (pure JS).
import t from 'tap';
import * as net from 'node:net';
import * as fs from 'node:fs';
import { spawnSync } from 'node:child_process';
import {
  IMPLS,
  NoReusePort,
  addonBuilt,
  freePort,
  hasIPv6,
  runProbes,
  startHolder,
  tcpStates,
  skipRest,
  DIST,
  HOLDER,
} from './helpers/native-util';
import { until } from './helpers/wait';

// The compiled code (npm run compile), as users get it.
const pp: typeof import('../dist/service/port-probe.js') = require('../dist/service/port-probe.js');
const be: typeof import('../dist/shared/bind-errors.js') = require('../dist/shared/bind-errors.js');
const nat: typeof import('../dist/shared/native.js') = require('../dist/shared/native.js');

const expected = (flag: '1' | '0') => (flag === '1' && addonBuilt() ? 'native' : 'js');

t.test('dist is compiled', async (t) => {
  t.ok(fs.existsSync(`${DIST}/service/port-probe.js`), 'run `npm run compile` first');
});

t.test('implementations load as asked', async (t) => {
  for (const flag of IMPLS) {
    const run = await runProbes(flag, []);
    t.equal(run.implementation, expected(flag), `CLUSTER2_NATIVE=${flag} -> ${expected(flag)}`);
    if (flag === '0') t.equal(run.loadError, null, 'forced off: no load error');
  }
});

t.test('a free port is free; port 0 is always free', async (t) => {
  const port = await freePort();
  for (const flag of IMPLS) {
    const run = await runProbes(flag, [
      ['127.0.0.1', port],
      [undefined, 0],
      ['', 0],
      ['127.0.0.1', 0],
    ]);
    t.same(run.results, [null, null, null, null], `${run.implementation}: all free`);
  }
});

t.test('a plain listener in another process is busy, with its pid and command', async (t) => {
  const h = await startHolder(t, 'plain', '127.0.0.1');
  for (const flag of IMPLS) {
    const run = await runProbes(flag, [
      ['127.0.0.1', h.port],
      ['', h.port],
      [undefined, h.port],
      ['localhost', h.port],
    ]);
    for (const [i, r] of run.results.entries()) {
      t.ok(r, `${run.implementation}: query ${i} busy`);
      if (!r) continue;
      if (i === 3 && r.host !== '127.0.0.1') continue; // localhost may resolve to ::1 first
      t.equal(r.code, 'EADDRINUSE', `${run.implementation}: EADDRINUSE`);
      t.equal(r.port, h.port);
      t.equal(r.pid, h.pid, `${run.implementation}: the holder's pid`);
      t.match(r.command, /holder\.js plain 127\.0\.0\.1/, `${run.implementation}: the holder's command line`);
    }
    t.equal(run.results[0]?.host, '127.0.0.1');
    t.equal(run.results[1]?.host, '', 'all interfaces stays ""');
    t.equal(run.results[2]?.host, '');
    t.equal(
      run.lines[0],
      `cluster2: port ${h.port} on 127.0.0.1 is busy (EADDRINUSE), held by pid ${h.pid}: ${process.execPath} ${HOLDER} plain 127.0.0.1 0`,
    );
    t.match(
      run.lines[1],
      new RegExp(`^cluster2: port ${h.port} on all interfaces is busy \\(EADDRINUSE\\), held by pid ${h.pid}: `),
    );
  }
  // In this process too, and findHolder on its own.
  const r = await pp.probePort('127.0.0.1', h.port);
  t.equal(r?.pid, h.pid);
  t.same(pp.findHolder(h.port), { pid: h.pid, command: `${process.execPath} ${HOLDER} plain 127.0.0.1 0` });
  t.same(pp.findHolder(h.port, '127.0.0.1')?.pid, h.pid);
});

t.test("another program's SO_REUSEPORT listener counts as busy", async (t) => {
  let h;
  try {
    h = await startHolder(t, 'reuseport', '');
  } catch (err) {
    if (err instanceof NoReusePort) return skipRest(t, `no SO_REUSEPORT here: ${err.message}`);
    throw err;
  }
  // A SO_REUSEPORT bind of ours would succeed and silently share its traffic...
  if (nat.native) {
    const fd = nat.native.listen('', h.port, 511, true);
    t.ok(fd >= 0, 'a second SO_REUSEPORT socket binds the same port');
    nat.native.close(fd);
  }
  // ...which is why the probe must say busy.
  for (const flag of IMPLS) {
    const run = await runProbes(flag, [
      ['', h.port],
      ['127.0.0.1', h.port],
    ]);
    for (const r of run.results) {
      t.equal(r?.code, 'EADDRINUSE', `${run.implementation}: busy`);
      t.equal(r?.pid, h.pid, `${run.implementation}: the holder's pid`);
      t.match(r?.command, /holder\.js reuseport/);
    }
  }
});

t.test('a port left in TIME_WAIT is free', async (t) => {
  const server = net.createServer((socket) => socket.end()); // the server closes first
  t.teardown(() => server.close());
  await new Promise<void>((resolve) => server.listen({ host: '127.0.0.1', port: 0 }, resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise<void>((resolve, reject) => {
    const client = net.connect({ host: '127.0.0.1', port });
    client.on('error', reject);
    client.on('close', () => resolve());
    client.resume(); // 'end' -> the client ends its side too (allowHalfOpen is false)
  });
  await new Promise<void>((resolve) => server.close(() => resolve()));
  await until(
    () => {
      const s = tcpStates(port);
      return s.includes('06') && !s.includes('0A');
    },
    20_000,
    `port ${port} in TIME_WAIT with no listener`,
  );
  for (const flag of IMPLS) {
    const run = await runProbes(flag, [
      ['127.0.0.1', port],
      ['', port],
    ]);
    t.ok(tcpStates(port).includes('06'), 'still in TIME_WAIT while probed');
    t.same(run.results, [null, null], `${run.implementation}: TIME_WAIT does not count as busy`);
  }
});

t.test("host '127.0.0.1' vs '' (all interfaces)", async (t) => {
  const v6 = await hasIPv6();
  t.test('holder on 127.0.0.1', async (t) => {
    const h = await startHolder(t, 'plain', '127.0.0.1');
    for (const flag of IMPLS) {
      const q: Array<[string, number]> = [
        ['127.0.0.1', h.port],
        ['', h.port],
        ['127.0.0.2', h.port], // another loopback address: not in the way
      ];
      if (v6) q.push(['::1', h.port]);
      const run = await runProbes(flag, q);
      const codes = run.results.map((r) => r?.code ?? null);
      t.same(codes, ['EADDRINUSE', 'EADDRINUSE', null, ...(v6 ? [null] : [])], `${run.implementation}: ${codes}`);
    }
  });
  t.test("holder on '' (all interfaces)", async (t) => {
    const h = await startHolder(t, 'plain', '');
    for (const flag of IMPLS) {
      const q: Array<[string, number]> = [
        ['', h.port],
        ['127.0.0.1', h.port],
        ['127.0.0.2', h.port],
      ];
      if (v6) q.push(['::1', h.port]);
      const run = await runProbes(flag, q);
      for (const r of run.results) {
        t.equal(r?.code, 'EADDRINUSE', `${run.implementation}: ${r?.host} busy`);
        t.equal(r?.pid, h.pid, `${run.implementation}: ${r?.host} held by the holder`);
      }
    }
  });
  t.test('holder on ::1', { skip: !v6 && 'no IPv6 on this machine' }, async (t) => {
    const h = await startHolder(t, 'plain', '::1');
    for (const flag of IMPLS) {
      const run = await runProbes(flag, [
        ['::1', h.port],
        ['', h.port],
        ['127.0.0.1', h.port],
      ]);
      const codes = run.results.map((r) => r?.code ?? null);
      t.same(codes, ['EADDRINUSE', 'EADDRINUSE', null], `${run.implementation}: ${codes}`);
      t.equal(run.results[0]?.pid, h.pid);
    }
  });
});

t.test('errors other than EADDRINUSE are reported, not thrown', async (t) => {
  const port = await freePort();
  for (const flag of IMPLS) {
    const run = await runProbes(flag, [
      ['192.0.2.1', port], // TEST-NET-1: not an address of this machine
      ['no-such-host.invalid', port],
    ]);
    t.equal(run.results[0]?.code, 'EADDRNOTAVAIL', `${run.implementation}: EADDRNOTAVAIL`);
    t.equal(run.results[0]?.pid, undefined);
    t.equal(
      run.lines[0],
      `cluster2: cannot bind port ${port} on 192.0.2.1: the address 192.0.2.1 is not on this machine (EADDRNOTAVAIL)`,
    );
    t.match(run.results[1]?.code, /^(ENOTFOUND|EAI_AGAIN|EAI_FAIL)$/, `${run.implementation}: unknown host`);
  }
});

t.test('EACCES for a privileged port as an unprivileged user', async (t) => {
  let start = 1024;
  try {
    start = Number(fs.readFileSync('/proc/sys/net/ipv4/ip_unprivileged_port_start', 'utf8'));
  } catch {
    // not Linux: 1024
  }
  const root = process.getuid?.() === 0;
  if (start <= 1) return skipRest(t, 'every port is unprivileged here');
  // A privileged port that is free right now (root can check).
  let port = 0;
  for (let p = Math.min(start - 1, 1023); p > 0 && !port; p--) {
    if (root && (await pp.probePort('127.0.0.1', p)) === null) port = p;
    if (!root) port = p;
  }
  if (!port) return skipRest(t, 'no free privileged port');
  const opts = root ? { uid: 65534, gid: 65534 } : {};
  if (root) {
    // Whether this machine lets a process switch to nobody and load the package: decided
    // here, before any probe, so that a probe that fails (a crash) fails the test.
    const can = spawnSync(process.execPath, ['-e', `require(${JSON.stringify(DIST)} + '/service/port-probe.js')`], {
      ...opts,
      stdio: ['ignore', 'ignore', 'pipe'],
      encoding: 'utf8',
    });
    if (can.error || can.status !== 0) {
      const why = can.error?.message ?? can.stderr.split('\n').find((l) => l.trim()) ?? `exit ${can.status}`;
      return skipRest(t, `cannot run as an unprivileged user: ${why}`);
    }
  }
  for (const flag of IMPLS) {
    const run = await runProbes(flag, [['127.0.0.1', port]], opts);
    if (run.results[0] === null) return skipRest(t, 'this user may bind privileged ports (capabilities)');
    t.equal(run.results[0]?.code, 'EACCES', `${run.implementation}: EACCES`);
    t.equal(
      run.lines[0],
      `cluster2: cannot bind port ${port} on 127.0.0.1: ` +
        'permission denied (a port below 1024 needs root or CAP_NET_BIND_SERVICE) (EACCES)',
    );
  }
});

t.test('resolveHost', async (t) => {
  t.equal(await pp.resolveHost(undefined), '');
  t.equal(await pp.resolveHost(''), '');
  t.equal(await pp.resolveHost('127.0.0.1'), '127.0.0.1');
  t.equal(await pp.resolveHost('::1'), '::1');
  t.ok(net.isIP(await pp.resolveHost('localhost')), 'a name resolves to a literal');
  await t.rejects(pp.resolveHost('no-such-host.invalid'));
});

t.test('formatBusy is one line', async (t) => {
  t.equal(
    be.formatBusy({ host: '0.0.0.0', port: 3000, code: 'EADDRINUSE', pid: 1234, command: 'node server.js' }),
    'cluster2: port 3000 on 0.0.0.0 is busy (EADDRINUSE), held by pid 1234: node server.js',
  );
  t.equal(
    be.formatBusy({ host: '', port: 3000, code: 'EADDRINUSE' }),
    'cluster2: port 3000 on all interfaces is busy (EADDRINUSE)',
  );
  t.equal(
    be.formatBusy({ host: '::1', port: 3000, code: 'EADDRINUSE', pid: 7, command: 'a\nb' }),
    'cluster2: port 3000 on ::1 is busy (EADDRINUSE), held by pid 7: a b',
  );
  t.equal(
    be.formatBusy({ host: '', port: 80, code: 'EPERM' }),
    'cluster2: cannot bind port 80 on all interfaces: permission denied (EPERM)',
  );
});

t.test("formatBusy escapes the holder's command line (another process's text)", async (t) => {
  t.equal(
    be.formatBusy({ host: '', port: 3000, code: 'EADDRINUSE', pid: 7, command: 'evil\u001b]0;x\u0007' }),
    'cluster2: port 3000 on all interfaces is busy (EADDRINUSE), held by pid 7: evil\\u001b]0;x\\u0007',
  );
});

t.test('probePort rejects a bad port', async (t) => {
  await t.rejects(pp.probePort('127.0.0.1', -1), RangeError);
  await t.rejects(pp.probePort('127.0.0.1', 65536), RangeError);
  await t.rejects(pp.probePort('127.0.0.1', 1.5), RangeError);
});

t.test('findHolder: nothing listens -> undefined', async (t) => {
  const port = await freePort();
  t.equal(pp.findHolder(port), undefined);
});
