import t from 'tap';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { appRoot, Deps } from '../dist/monitor/deps.js';
import { segments } from '../dist/monitor/server.js';
import { procNetTcp } from '../dist/service/port-probe.js';
import { nth, startApp, tmpdir, until } from './helpers/cluster';
import { request, startLoad, type Res } from './helpers/http';

const { freePort } = require('./fixtures/monitor-ports.js') as { freePort: () => Promise<number> };

const ROOT = path.join(__dirname, '..');
/** The monitor's default port (SPEC section 2). */
const MON_DEFAULT = 3001;

/** The TCP ports that these processes hold listening sockets for (sorted, unique). */
function listeningPorts(pids: number[]): number[] {
  const inodes = new Set<string>();
  for (const pid of pids) {
    for (const fd of fs.readdirSync(`/proc/${pid}/fd`)) {
      try {
        const m = /^socket:\[(\d+)\]$/.exec(fs.readlinkSync(`/proc/${pid}/fd/${fd}`));
        if (m) inodes.add(m[1]);
      } catch {
        /* closed meanwhile */
      }
    }
  }
  const ports = new Set<number>();
  for (const f of procNetTcp()) {
    if (f.length >= 10 && f[3] === '0A' && inodes.has(f[9])) ports.add(parseInt(f[1].split(':')[1], 16));
  }
  return [...ports].sort((a, b) => a - b);
}

/** Send raw bytes, return what comes back until the server closes (or 5 s). */
function raw(port: number, data: string | Buffer): Promise<string> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    let out = '';
    s.setEncoding('latin1');
    s.on('data', (d) => {
      out += d;
    });
    s.on('error', () => {});
    s.on('close', () => resolve(out));
    s.setTimeout(5000, () => s.destroy());
    s.end(data);
  });
}

/** Parse Prometheus text into { 'name{labels}': value }. */
function parseMetrics(text: string): Map<string, number> {
  const m = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const i = line.lastIndexOf(' ');
    m.set(line.slice(0, i), Number(line.slice(i + 1)));
  }
  return m;
}

async function monitorApp(t: Parameters<typeof startApp>[0], opts: Record<string, unknown> = {}) {
  const monPort = await freePort();
  const app = await startApp(t, { opts: { monPort, ...opts } });
  return { app, monPort, get: (p: string, o?: Parameters<typeof request>[2]) => request(monPort, p, o) };
}

t.test('units: request targets split without normalising; app root and deps', async (t) => {
  t.same(segments('/logs/a%20b.log?tail=3')?.parts, ['logs', 'a b.log']);
  t.same(segments('/logs/')?.parts, ['logs']);
  t.same(segments('/')?.parts, ['']);
  t.same(segments('/logs/%2e%2e/x')?.parts, ['logs', '..', 'x'], 'an encoded .. stays a ..');
  t.same(segments('/logs/a%2Fb')?.parts, ['logs', 'a/b'], 'an encoded / stays inside the segment');
  t.equal(segments('/logs/%E0%A4%A'), null, 'bad percent-encoding');
  t.equal(segments('http://x/logs'), null, 'absolute-form');
  t.equal(segments('*'), null);

  t.equal(appRoot(path.join(ROOT, 'test', 'fixtures', 'app.js'), '/'), ROOT, 'nearest package.json above the script');
  t.equal(
    appRoot(path.join(ROOT, 'node_modules', 'tap', 'bin', 'x.js'), ROOT),
    ROOT,
    'a launcher inside node_modules: the working directory',
  );
  const dir = tmpdir();
  fs.writeFileSync(path.join(dir, 'package.json'), '{}');
  fs.mkdirSync(path.join(dir, 'a', 'b'), { recursive: true });
  t.equal(appRoot('', path.join(dir, 'a', 'b')), dir, 'no script: nearest package.json above the working directory');

  // lockfile v1 (nested), and no lockfile (node_modules)
  fs.writeFileSync(
    path.join(dir, 'package.json'),
    JSON.stringify({
      name: 'app',
      version: '1.2.3',
      dependencies: { a: '^1.0.0', gone: '*' },
      devDependencies: { b: '~2.0.0' },
    }),
  );
  fs.writeFileSync(
    path.join(dir, 'package-lock.json'),
    JSON.stringify({
      lockfileVersion: 1,
      dependencies: {
        a: { version: '1.4.0', dependencies: { c: { version: '3.0.0' } } },
        b: { version: '2.0.1', dev: true },
      },
    }),
  );
  let d = await new Deps(dir).report(true);
  t.equal(d.name, 'app');
  t.equal(d.source, 'package-lock.json');
  t.same(
    d.dependencies.map((x) => [x.name, x.type, x.installed]),
    [
      ['a', 'prod', '1.4.0'],
      ['gone', 'prod', null],
      ['b', 'dev', '2.0.1'],
    ],
  );
  t.same(d.missing, ['gone']);
  t.equal(d.total, 3, 'the whole tree, nested ones too');
  t.ok(d.packages!.some((p) => p.path === 'node_modules/a/node_modules/c' && p.version === '3.0.0'));
  fs.unlinkSync(path.join(dir, 'package-lock.json'));
  fs.mkdirSync(path.join(dir, 'node_modules', 'a'), { recursive: true });
  fs.writeFileSync(path.join(dir, 'node_modules', 'a', 'package.json'), JSON.stringify({ version: '1.9.9' }));
  d = await new Deps(dir).report();
  t.equal(d.source, 'node_modules', 'without a lockfile: what is installed');
  t.equal(d.dependencies[0].installed, '1.9.9');
  fs.writeFileSync(path.join(dir, 'package.json'), '{ not json');
  t.match((await new Deps(dir).report()).error, /package\.json/, 'a broken package.json is reported, not thrown');
});

t.test('/status, /, /metrics, /deps', async (t) => {
  const { app, monPort, get } = await monitorApp(t);
  const s = JSON.parse((await get('/status')).body);
  t.equal(s.pid, app.pid);
  t.equal(s.port, app.port);
  t.equal(s.state, 'running');
  t.same(s.workers.map((w: { pid: number }) => w.pid).sort(), app.workers().sort());
  t.ok(s.ecv.enabled);

  const page = await get('/');
  t.equal(page.status, 200);
  t.match(page.headers['content-type'], /text\/html/);
  t.match(page.headers['content-security-policy'], /default-src 'none'/, 'a strict CSP');
  t.notMatch(page.body, /<link|src=|@import|url\(/, 'no external asset');
  t.equal((await get('/', { method: 'HEAD' })).body, '', 'HEAD');
  t.equal((await get('/', { method: 'POST' })).status, 405);
  t.equal((await get('/nope')).status, 404);
  t.equal((await get('/status/x')).status, 404);

  // Traffic shows in the per-worker series and the totals once the next pongs arrive.
  for (let i = 0; i < 40; i++) await request(app.port, '/');
  let m = new Map<string, number>();
  await until(
    async () => {
      m = parseMetrics((await get('/metrics')).body);
      return m.get('cluster2_requests_total')! >= 40;
    },
    10_000,
    'requests in /metrics',
  );
  // Series by slot; the pid of the worker serving it is in cluster2_worker_info.
  for (const slot of ['0', '1']) {
    t.ok(m.has(`cluster2_worker_requests_total{slot="${slot}"}`), `series for slot ${slot}`);
    t.ok(m.has(`cluster2_worker_resident_memory_bytes{slot="${slot}"}`), `RSS of slot ${slot}`);
  }
  for (const pid of app.workers())
    t.ok(
      [...m.keys()].some((k) => k.startsWith('cluster2_worker_info{') && k.includes(`pid="${pid}"`)),
      `worker ${pid} in cluster2_worker_info`,
    );
  t.equal(m.get('cluster2_workers{state="listening"}'), 2);
  t.equal(m.get('cluster2_ecv_enabled'), 1);
  t.ok(m.get('cluster2_master_process_resident_memory_bytes')! > 0, "the master's own process metrics");
  const before = m.get('cluster2_requests_total')!;

  // A worker dies: the totals never go back, the dead worker's series goes away.
  const [victim] = app.workers();
  process.kill(victim, 'SIGKILL');
  await nth(app, 'listening', 3);
  m = parseMetrics((await get('/metrics')).body);
  t.ok(m.get('cluster2_requests_total')! >= before, 'cluster2_requests_total is monotonic across a restart');
  await until(
    async () => {
      m = parseMetrics((await get('/metrics')).body);
      return ![...m.keys()].some((k) => k.includes(`pid="${victim}"`));
    },
    10_000,
    'the dead worker to leave cluster2_worker_info',
  );
  t.pass('no series for the dead worker');
  t.equal(m.get('cluster2_worker_exits_total'), 1);
  t.equal(m.get('cluster2_restarts_total'), 1);

  const deps = JSON.parse((await get('/deps')).body);
  t.equal(deps.root, ROOT, 'the app root: nearest package.json above the script');
  t.equal(deps.name, 'cluster2');
  const prom = deps.dependencies.find((d: { name: string }) => d.name === 'prom-client');
  t.equal(
    prom?.installed,
    JSON.parse(fs.readFileSync(path.join(ROOT, 'node_modules/prom-client/package.json'), 'utf8')).version,
    'installed version from the lockfile',
  );
  t.ok(deps.total > 10);
  t.notOk('packages' in deps);
  t.ok(JSON.parse((await get('/deps?all=1')).body).packages.length > 10, '?all=1: the whole tree');
  void monPort;
});

t.test('/logs: listing and files, and no way out', async (t) => {
  const base = tmpdir();
  // /logs serves only what every local user could read (test/logs-access.test.ts): mkdtemp makes 0700.
  fs.chmodSync(base, 0o755);
  const logs = path.join(base, 'logs');
  fs.mkdirSync(path.join(logs, 'old'), { recursive: true });
  fs.writeFileSync(path.join(logs, 'app.log'), 'line 1\nline 2\nline 3\n');
  fs.writeFileSync(path.join(logs, 'a b.log'), 'spaced\n');
  fs.writeFileSync(path.join(logs, '<b>x.html'), '<script>alert(1)</script>');
  fs.writeFileSync(path.join(logs, 'old', 'app.1.log'), 'older\n');
  fs.writeFileSync(path.join(base, 'secret.txt'), 'SECRET\n');
  fs.symlinkSync(path.join(base, 'secret.txt'), path.join(logs, 'escape.log'));
  fs.symlinkSync(base, path.join(logs, 'up'));
  fs.symlinkSync(path.join(logs, 'app.log'), path.join(logs, 'current.log'));
  execFileSync('mkfifo', [path.join(logs, 'pipe')]);
  const { get, monPort } = await monitorApp(t, { logs });

  const list = await get('/logs');
  t.equal(list.status, 200);
  t.match(list.body, /href="\/logs\/app\.log"/);
  t.match(list.body, /href="\/logs\/a%20b\.log"/);
  t.match(list.body, /href="\/logs\/old\/"/);
  t.match(list.body, /&#60;b&#62;x\.html/, 'names are escaped');
  t.notMatch(list.body, /escape\.log|"\/logs\/up\//, 'links that point outside are not listed');
  const json = JSON.parse((await get('/logs?format=json')).body);
  t.same(
    json.entries.map((e: { name: string }) => e.name).sort(),
    ['<b>x.html', 'a b.log', 'app.log', 'current.log', 'old'].sort(),
  );
  t.equal((await get('/logs/')).status, 200);

  const f = await get('/logs/app.log');
  t.equal(f.body, 'line 1\nline 2\nline 3\n');
  t.match(f.headers['content-type'], /^text\/plain/);
  t.equal(f.headers['x-content-type-options'], 'nosniff');
  t.match(f.headers['content-security-policy'], /sandbox/);
  t.equal((await get('/logs/app.log?tail=7')).body, 'line 3\n', '?tail=<bytes>');
  t.equal((await get('/logs/a%20b.log')).body, 'spaced\n');
  t.equal((await get('/logs/old/app.1.log')).body, 'older\n', 'a file in a subdirectory');
  t.equal((await get('/logs/current.log')).body, 'line 1\nline 2\nline 3\n', 'a link that stays inside is followed');
  t.equal(
    (await get('/logs/%3Cb%3Ex.html')).headers['content-type'],
    'text/plain; charset=utf-8',
    'HTML is served as text',
  );
  t.equal((await get('/logs/app.log', { method: 'HEAD' })).headers['content-length'], '21');
  t.equal((await get('/logs/nope.log')).status, 404);
  t.equal((await get('/logs/pipe')).status, 404, 'a FIFO is not served (and does not hang)');

  const outside: [string, number[]][] = [
    ['/logs/../secret.txt', [403, 404]],
    ['/logs/%2e%2e/secret.txt', [403, 404]],
    ['/logs/%2E%2E/secret.txt', [403, 404]],
    ['/logs/..%2fsecret.txt', [403, 404]],
    ['/logs/..%5csecret.txt', [403, 404]],
    ['/logs/%2Ftmp%2Fsecret.txt', [403, 404]],
    ['/logs//etc/passwd', [403, 404]],
    ['/logs/old/../../secret.txt', [403, 404]],
    ['/logs/escape.log', [403]],
    ['/logs/up/secret.txt', [403]],
    ['/logs/up/', [403]],
    ['/logs/app.log%00.txt', [403, 404]],
    [`/logs/${encodeURIComponent(path.join(base, 'secret.txt'))}`, [403, 404]],
  ];
  for (const [p, codes] of outside) {
    const r = await get(p);
    t.ok(codes.includes(r.status), `${p}: ${r.status}`);
    t.notMatch(r.body, /SECRET/, `${p}: nothing of the file`);
  }
  // The same through a raw socket, with no client normalising the path.
  const rr = await raw(
    monPort,
    'GET /logs/../../../../etc/passwd HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n',
  );
  t.match(rr, /^HTTP\/1\.1 40[34]/);
  t.notMatch(rr, /root:/);

  const none = await monitorApp(t, { logs: path.join(base, 'missing') });
  const empty = JSON.parse((await none.get('/logs?format=json')).body);
  t.same(empty.entries, [], 'no logs directory: an empty listing');
});

t.test('the monitor refuses DNS-rebinding Host names, binds loopback, and can be turned off', async (t) => {
  const { get, monPort } = await monitorApp(t);
  t.equal((await get('/status', { headers: { host: 'evil.example:80' } })).status, 403, 'an unknown Host');
  t.equal((await get('/status', { headers: { host: `localhost:${monPort}` } })).status, 200);
  t.equal((await get('/status', { headers: { host: `127.0.0.1:${monPort}` } })).status, 200);
  t.equal((await get('/status', { headers: { host: `[::1]:${monPort}` } })).status, 200);
  t.equal((await get('/ecv', { headers: { host: 'lb.example' } })).status, 200, 'reading ECV is fine with any Host');
  const local = await request(monPort, '/status', { host: '::1' }).catch((e: NodeJS.ErrnoException) => e.code);
  t.equal(local, 'ECONNREFUSED', 'bound to 127.0.0.1 only (monHost)');

  // monPort: false. The monitor's default port (3001) cannot be asked for here (another test
  // or program may hold it), so read what the processes listen on instead: every TCP port the
  // master and its workers hold a listening socket for (their fds, matched with /proc/net/tcp*).
  const on = await monitorApp(t);
  t.ok(listeningPorts([on.app.pid]).includes(on.monPort), 'the probe sees a monitor where there is one');
  const off = await startApp(t, { opts: { monPort: false } });
  const held = listeningPorts([off.pid, ...off.workers()]);
  t.same(held, [off.port], `monPort: false: no monitor; the only port listened on is the app's (not ${MON_DEFAULT})`);
});

t.test('single process: the monitor shows the process itself', async (t) => {
  const { app, get } = await monitorApp(t, { cluster: false });
  const s = JSON.parse((await get('/status')).body);
  t.equal(s.strategy, 'single');
  t.same(
    s.workers.map((w: { pid: number }) => w.pid),
    [app.pid],
  );
  t.match((await get('/metrics')).body, new RegExp(`cluster2_worker_info\\{slot="0",pid="${app.pid}"\\} 1`));
});

t.test(
  'fuzz: random paths, methods, oversized headers and garbage; the monitor keeps answering and the workers keep serving',
  async (t) => {
    const { app, monPort, get } = await monitorApp(t, { logs: ROOT });
    const load = startLoad(app.port, { connections: 8 });
    let seed = 0x2545f491;
    const rnd = (n: number) => {
      seed ^= seed << 13;
      seed ^= seed >>> 17;
      seed ^= seed << 5;
      return (seed >>> 0) % n;
    };
    const pick = <T>(a: T[]) => a[rnd(a.length)];
    const methods = ['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS', 'TRACE', 'PROPFIND', 'X'.repeat(40)];
    const roots = ['', 'status', 'metrics', 'logs', 'deps', 'ecv', 'ecv/disable', '%', '..', '%2e%2e', '%00', '\u00e9'];
    const piece = () => {
      switch (rnd(6)) {
        case 0:
          return '..';
        case 1:
          return encodeURIComponent(String.fromCharCode(rnd(0x7ff) + 1));
        case 2:
          return '%' + rnd(256).toString(16);
        case 3:
          return 'a'.repeat(rnd(3000));
        case 4:
          return pick(['package.json', 'lib', '.git', 'node_modules', '~', '*']);
        default:
          return String(rnd(1e9));
      }
    };
    const statuses = new Map<number, number>();
    const one = async () => {
      const p = `/${pick(roots)}${Array.from({ length: rnd(5) }, () => `/${piece()}`).join('')}${rnd(3) ? '' : `?${piece()}=${piece()}`}`;
      const headers: Record<string, string> = {};
      if (!rnd(5)) headers['x-big'] = 'x'.repeat(20_000 + rnd(20_000));
      if (!rnd(5)) headers.host = pick(['evil.example', 'localhost', '[::1]', '', 'a'.repeat(300)]);
      let r: Res | string;
      try {
        r = await request(monPort, p, { method: pick(methods), headers, timeout: 10_000 });
      } catch (e) {
        r = (e as NodeJS.ErrnoException).code ?? String(e);
      }
      if (typeof r !== 'string') statuses.set(r.status, (statuses.get(r.status) ?? 0) + 1);
    };
    const garbage = [
      'GARBAGE\r\n\r\n',
      '\x00\x01\x02\x03\r\n\r\n',
      'GET\r\n\r\n',
      `GET /${'a'.repeat(100_000)} HTTP/1.1\r\n\r\n`,
      'GET / HTTP/9.9\r\n\r\n',
      'GET / HTTP/1.1\r\nContent-Length: -1\r\n\r\n',
      'GET / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n',
      `GET / HTTP/1.1\r\n${'X-A: b\r\n'.repeat(5000)}\r\n`,
      'CONNECT 127.0.0.1:22 HTTP/1.1\r\n\r\n',
      'GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n',
    ];
    for (let round = 0; round < 10; round++) {
      await Promise.all(Array.from({ length: 30 }, one));
      await Promise.all(garbage.map((g) => raw(monPort, g)));
      const s = await get('/status');
      t.equal(s.status, 200, `round ${round}: /status still answers`);
    }
    // Half-open connections that never finish their headers do not take it down either.
    const dangling = Array.from({ length: 50 }, () => {
      const s = net.connect(monPort, '127.0.0.1');
      s.on('error', () => {});
      s.write('GET /status HTTP/1.1\r\nHost: x\r\n');
      return s;
    });
    t.equal((await get('/status')).status, 200, 'answers with 50 dangling connections open');
    for (const s of dangling) s.destroy();
    const res = await load.stop();
    t.equal(res.failed, 0, `the app served through it all (${res.ok} ok)`);
    t.ok(statuses.get(431) || statuses.get(400), 'oversized headers were refused with 4xx');
    t.comment(`statuses: ${JSON.stringify([...statuses].sort((a, b) => a[0] - b[0]))}`);
    t.notOk(statuses.has(500), 'no 500');
    t.equal(app.events.filter((e) => e.ev === 'died').length, 0, 'no worker died');
    t.equal(app.proc.exitCode, null, 'the master is up');
    t.ok(fs.existsSync(path.join(ROOT, 'package.json')), 'and nothing was touched');
  },
);
