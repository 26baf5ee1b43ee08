import t from 'tap';
import * as http from 'node:http';
import * as https from 'node:https';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { EcvState, healthy, plainIp, probeMonitor } from '../dist/shared/ecv.js';
import { nth, startApp, tmpdir, until, type App } from './helpers/cluster';
import { request, type Res } from './helpers/http';

const { freePort } = require('./fixtures/monitor-ports.js') as { freePort: () => Promise<number> };

const HOST = os.hostname();
const DATE = '[A-Z][a-z]{2} [A-Z][a-z]{2} \\d{2} \\d{4} \\d{2}:\\d{2}:\\d{2} GMT[+-]\\d{4} \\(.+\\)';
const body = (status: string, port: number, ip = '127.0.0.1') =>
  new RegExp(
    `^status=${status}&ServeTraffic=${status === 'AVAILABLE'}&ip=${ip.replace(/\./g, '\\.')}&hostname=${HOST}&port=${port}&time=${DATE}$`,
  );

/** A request from a chosen local address, or over TLS. */
function req(
  port: number,
  p: string,
  o: { method?: string; localAddress?: string; tls?: boolean; headers?: http.OutgoingHttpHeaders } = {},
): Promise<Res> {
  return new Promise((resolve, reject) => {
    const get = o.tls ? https.request : http.request;
    const r = get(
      {
        host: '127.0.0.1',
        port,
        path: p,
        method: o.method ?? 'GET',
        localAddress: o.localAddress,
        headers: o.headers,
        agent: false,
        rejectUnauthorized: false,
        timeout: 10_000,
      },
      (res) => {
        let b = '';
        res.setEncoding('utf8');
        res.on('data', (d) => {
          b += d;
        });
        res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: b }));
      },
    );
    r.on('timeout', () => r.destroy(new Error('client timeout')));
    r.on('error', reject);
    r.end();
  });
}

/** Every one of n fresh connections (spread over the workers) gets this ECV status. */
async function allSay(port: number, status: number, n = 16, p = '/ecv'): Promise<boolean> {
  const rs = await Promise.all(Array.from({ length: n }, () => request(port, p)));
  return rs.every((r) => r.status === status);
}

const ecvApp = (t: Tap, opts: Record<string, unknown>, env: NodeJS.ProcessEnv = {}, kind = 'http') =>
  startApp(t, { fixture: 'ecv-app.js', opts, env: { C2_KIND: kind, ...env } });
type Tap = Parameters<typeof startApp>[0];

t.test('units: state, addresses, checks that never hang', async (t) => {
  const s = new EcvState();
  t.equal(await s.when(true, 10), true, 'already enabled');
  const waiting = s.when(false, 5000);
  setTimeout(() => s.set(false, 1234), 10);
  t.equal(await waiting, true, 'resolves when the state comes');
  t.equal(s.since, 1234);
  t.equal(await s.when(true, 30), false, 'gives up after the time given');
  t.equal(plainIp('::ffff:127.0.0.1'), '127.0.0.1');
  t.equal(plainIp('::1'), '::1');
  t.equal(plainIp(undefined), '');

  // A monitor path that accepts and never answers, and one that refuses.
  const hang = http.createServer(() => {});
  await new Promise<void>((r) => hang.listen(0, '127.0.0.1', r));
  t.teardown(() => {
    hang.closeAllConnections();
    hang.close();
  });
  const port = (hang.address() as { port: number }).port;
  const target = { host: '127.0.0.1', port, tls: false };
  t.equal(await probeMonitor(target, '/x', 100), false, 'a hanging monitor path is unhealthy');
  t.equal(await probeMonitor({ ...target, port: await freePort() }, '/x', 1000), false, 'a refused one too');
  const ecv = { path: '/ecv', control: false, allow: [] as string[] };
  t.equal(
    await healthy({ ...ecv, validator: () => new Promise<boolean>(() => {}) }, target, 100),
    false,
    'a validator that never settles',
  );
  t.equal(
    await healthy(
      {
        ...ecv,
        validator: () => {
          throw new Error('x');
        },
      },
      target,
      100,
    ),
    false,
    'a validator that throws',
  );
  t.equal(await healthy({ ...ecv, validator: async () => true }, target, 100), true, 'an async validator');
  t.equal(await healthy({ ...ecv, monitor: '/x' }, target, 100), false, 'the monitor path within the same deadline');
});

t.test('the original responses: AVAILABLE, DISABLED, HEAD, 405, control routes', async (t) => {
  const app = await startApp(t, { opts: { ecv: { control: true } } });
  const r = await request(app.port, '/ecv');
  t.equal(r.status, 200);
  t.match(r.body, body('AVAILABLE', app.port), 'body as the original, ip without ::ffff:');
  t.equal(r.headers['x-powered-by'], 'Cluster2');
  t.equal(r.headers['content-type'], 'text/plain');
  t.equal(r.headers['cache-control'], 'no-cache');
  t.match(r.headers.since, new RegExp(`^${DATE}$`));

  const q = await request(app.port, '/ecv?from=lb');
  t.equal(q.status, 200, 'a query string is ignored');
  const h = await request(app.port, '/ecv', { method: 'HEAD' });
  t.equal(h.status, 200, 'HEAD works like GET');
  t.equal(h.body, '', 'with no body');
  t.equal(h.headers['content-type'], 'text/plain');
  const p = await request(app.port, '/ecv', { method: 'PUT' });
  t.equal(p.status, 405, 'other methods: 405');
  t.equal(p.headers.allow, 'GET, HEAD');
  t.equal((await request(app.port, '/ecv/disable')).status, 405, 'GET on a control route: 405');
  t.equal((await request(app.port, '/ecvx')).body.startsWith('hello'), true, 'a longer path is the app');
  t.equal((await request(app.port, '/')).body.startsWith('hello'), true, 'the app answers the rest');

  const six = await request(app.port, '/ecv', { host: '::1' }).catch(() => null);
  if (six) t.match(six.body, body('AVAILABLE', app.port, '::1'), 'an IPv6 client sees ip=::1');

  const d = await request(app.port, '/ecv/disable', { method: 'POST' });
  t.equal(d.status, 204, 'POST /ecv/disable: 204');
  t.equal(d.headers['x-powered-by'], 'Cluster2');
  t.equal(d.headers.connection, 'close');
  t.ok(d.headers.since, 'since');
  await app.waitFor('ecv', (e) => e.args[0] === false);
  // The 204 waits for the master's broadcast; the other worker may take a moment longer.
  await until(() => allSay(app.port, 400), 5000, 'every worker DISABLED');
  const x = await request(app.port, '/ecv');
  t.equal(x.status, 400);
  t.match(x.body, body('DISABLED', app.port));
  t.equal(x.headers.since, d.headers.since, 'since: the time of the change, the same everywhere');
  t.equal(x.headers.connection, 'close', 'the original closed the connection when disabled');

  t.equal((await request(app.port, '/ecv/enable', { method: 'POST' })).status, 204);
  await until(() => allSay(app.port, 200), 5000, 'every worker AVAILABLE again');
  await app.waitFor('ecv', (e) => e.args[0] === true);
});

t.test('a worker forked after a disable answers DISABLED', async (t) => {
  const app = await startApp(t, { opts: { noWorkers: 1, ecv: { control: true } } });
  t.equal((await request(app.port, '/ecv/disable', { method: 'POST' })).status, 204);
  const [old] = app.workers();
  process.kill(old, 'SIGKILL');
  await nth(app, 'listening', 2);
  const r = await request(app.port, '/ecv');
  t.equal(r.status, 400, 'the new worker got the state from the master');
  t.equal((await request(app.port, '/')).body, `hello ${app.workers()[0]}`, 'and it is the new worker that answered');
  t.not(app.workers()[0], old);
});

t.test('control: only with control: true, only from allowed addresses, never from a browser', async (t) => {
  const off = await startApp(t, { opts: { noWorkers: 1 } });
  const r = await request(off.port, '/ecv/disable', { method: 'POST' });
  t.match(r.body, /^hello/, "without control the route is the app's");
  t.equal((await request(off.port, '/ecv')).status, 200, 'and ECV stays AVAILABLE');

  const on = await startApp(t, { opts: { noWorkers: 1, ecv: { control: true } } });
  const other = await req(on.port, '/ecv/disable', { method: 'POST', localAddress: '127.0.0.2' });
  t.equal(other.status, 403, 'an address not in ecv.allow (127.0.0.2) gets 403');
  const browser = await req(on.port, '/ecv/disable', {
    method: 'POST',
    headers: { origin: `http://127.0.0.1:${on.port}` },
  });
  t.equal(browser.status, 403, 'a request with Origin (a browser page) gets 403');
  for (const site of ['cross-site', 'same-site']) {
    const page = await req(on.port, '/ecv/disable', {
      method: 'POST',
      headers: { 'sec-fetch-site': site, 'sec-fetch-mode': 'no-cors' },
    });
    t.equal(page.status, 403, `Sec-Fetch-Site: ${site} (a page) gets 403`);
  }
  t.equal((await request(on.port, '/ecv')).status, 200, 'still AVAILABLE');

  const allowed = await startApp(t, { opts: { noWorkers: 1, ecv: { control: true, allow: ['127.0.0.2'] } } });
  t.equal(
    (await req(allowed.port, '/ecv/disable', { method: 'POST', localAddress: '127.0.0.2' })).status,
    204,
    'ecv.allow lists it: 204',
  );
  t.equal((await request(allowed.port, '/ecv')).status, 400);
  t.equal((await request(allowed.port, '/ecv/enable', { method: 'POST' })).status, 204, 'loopback stays allowed');
  const script = await req(allowed.port, '/ecv/disable', {
    method: 'POST',
    headers: { 'sec-fetch-mode': 'cors', 'sec-fetch-site': 'none' },
  });
  t.equal(script.status, 204, "no Origin, Sec-Fetch-Mode only (Node's fetch): a script, 204");
});

t.test('validator and monitor path make ECV WARNING (500); hanging ones do not hang it', async (t) => {
  const cases: [string, NodeJS.ProcessEnv, Record<string, unknown>, number][] = [
    ['validator false', { C2_VALIDATOR: 'false' }, {}, 500],
    ['validator async false', { C2_VALIDATOR: 'async-false' }, {}, 500],
    ['validator throws', { C2_VALIDATOR: 'throw' }, {}, 500],
    ['validator never settles', { C2_VALIDATOR: 'hang' }, {}, 500],
    ['validator async true', { C2_VALIDATOR: 'async-true' }, {}, 200],
    ['monitor path 200', {}, { monitor: '/health' }, 200],
    ['monitor path 503', { C2_HEALTH: '503' }, { monitor: '/health' }, 500],
    ['monitor path 302', { C2_HEALTH: '302' }, { monitor: '/health' }, 500],
    ['monitor path never answers', {}, { monitor: '/never' }, 500],
    ['validator true and monitor path 200', { C2_VALIDATOR: 'true' }, { monitor: '/health' }, 200],
  ];
  for (const [name, env, ecv, status] of cases) {
    const app = await ecvApp(t, { noWorkers: 1, ecv }, env);
    const r = await request(app.port, '/ecv');
    t.equal(r.status, status, name);
    if (status === 500) t.match(r.body, body('WARNING', app.port), `${name}: WARNING body`);
    const h = await request(app.port, '/ecv', { method: 'HEAD' });
    t.equal(h.status, status, `${name}: HEAD too`);
  }
});

t.test('health follows the validator at run time', async (t) => {
  const flag = path.join(tmpdir(), 'unhealthy');
  const app = await ecvApp(t, { noWorkers: 1, ecv: { monitor: '/health' } }, { C2_VALIDATOR: `file:${flag}` });
  t.equal((await request(app.port, '/ecv')).status, 200);
  fs.writeFileSync(flag, '');
  t.equal((await request(app.port, '/ecv')).status, 500, 'unhealthy');
  fs.unlinkSync(flag);
  t.equal((await request(app.port, '/ecv')).status, 200, 'healthy again');
});

t.test('concurrent checks share one answer: 50 requests, one validator call', async (t) => {
  // The validator writes a line per call and answers only once the worker has received all
  // 50 requests, so they all arrive while one check runs.
  const calls = path.join(tmpdir(), 'calls');
  const app = await ecvApp(t, { noWorkers: 1 }, { C2_VALIDATOR: `count:50:${calls}` });
  const many = await Promise.all(Array.from({ length: 50 }, () => request(app.port, '/ecv')));
  t.same(
    many.map((r) => r.status),
    Array(50).fill(200),
    '50 concurrent ECV requests: 200',
  );
  t.equal(fs.readFileSync(calls, 'utf8').split('\n').filter(Boolean).length, 1, 'the validator ran once for all 50');
});

t.test('during a shutdown ECV answers DISABLED and cannot be enabled', async (t) => {
  const app = await startApp(t, { opts: { drainDelay: 1500, ecv: { control: true } } });
  t.equal((await request(app.port, '/ecv')).status, 200);
  process.kill(app.pid, 'SIGTERM');
  await app.waitFor('ecv', (e) => e.args[0] === false);
  // The listeners stay open for drainDelay: new connections still reach the workers.
  await until(() => allSay(app.port, 400, 8), 1000, 'DISABLED on every worker while drainDelay runs');
  const e = await request(app.port, '/ecv/enable', { method: 'POST' });
  t.equal(e.status, 503, 'enable is refused during a shutdown');
  t.equal((await request(app.port, '/ecv')).status, 400, 'still DISABLED');
  t.equal((await app.exited).code, 0, 'then the master exits 0');
});

t.test('single process: the same ECV, and a shutdown disables it', async (t) => {
  const app = await startApp(t, { opts: { cluster: false, drainDelay: 1000, ecv: { control: true } } });
  t.match((await request(app.port, '/ecv')).body, body('AVAILABLE', app.port));
  t.equal((await request(app.port, '/ecv/disable', { method: 'POST' })).status, 204);
  t.equal((await request(app.port, '/ecv')).status, 400);
  t.equal((await request(app.port, '/ecv/enable', { method: 'POST' })).status, 204);
  process.kill(app.pid, 'SIGTERM');
  await app.waitFor('SIGTERM');
  t.equal((await request(app.port, '/ecv')).status, 400, 'DISABLED during drainDelay');
  t.equal((await request(app.port, '/ecv/enable', { method: 'POST' })).status, 503);
  t.equal((await app.exited).code, 0);
});

t.test('HTTPS: ECV on the app port over TLS, the monitor path fetched over TLS', async (t) => {
  const app = await ecvApp(t, { noWorkers: 1, ecv: { monitor: '/health' } }, {}, 'https');
  const r = await req(app.port, '/ecv', { tls: true });
  t.equal(r.status, 200);
  t.match(r.body, body('AVAILABLE', app.port));
});

t.test('a plain net server: ECV on the monitor port, the same routes', async (t) => {
  const monPort = await freePort();
  const app: App = await ecvApp(t, { monPort, ecv: { control: true } }, {}, 'net');
  const r = await request(monPort, '/ecv');
  t.equal(r.status, 200);
  t.match(r.body, body('AVAILABLE', app.port), 'names the app port');
  t.equal((await request(monPort, '/ecv', { method: 'HEAD' })).status, 200);
  t.equal((await request(monPort, '/ecv', { method: 'DELETE' })).status, 405);
  t.equal((await req(monPort, '/ecv/disable', { method: 'POST', localAddress: '127.0.0.2' })).status, 403);
  t.equal((await request(monPort, '/ecv/disable', { method: 'POST' })).status, 204);
  await app.waitFor('ecv', (e) => e.args[0] === false);
  t.match((await request(monPort, '/ecv')).body, body('DISABLED', app.port));
  t.equal((await request(monPort, '/ecv/enable', { method: 'POST' })).status, 204);
  t.equal((await request(monPort, '/ecv')).status, 200);

  const sick = await ecvApp(t, { monPort: await freePort() }, { C2_VALIDATOR: 'false' }, 'net');
  const monitor = await sick.waitFor('monitor');
  t.equal(
    (await request(monitor.args[0].port, '/ecv')).status,
    500,
    'the validator runs in the master for the monitor port',
  );
});
