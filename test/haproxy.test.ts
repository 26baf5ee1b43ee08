import t from 'tap';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { everyInstanceInRotation, startBalancer } from './helpers/balancer';
import { startApp, tmpdir, until, type App } from './helpers/cluster';
import { request, startLoad } from './helpers/http';
import { rollingRestart } from './helpers/rolling';

const { freePorts } = require('./fixtures/monitor-ports.js') as { freePorts: (n: number) => Promise<number[]> };

// Debian's haproxy (apt-get install -y haproxy), in front of two cluster2 instances.
const HAPROXY = ['/usr/sbin/haproxy', '/usr/bin/haproxy'].find((p) => fs.existsSync(p));
const INTER_MS = 200;
/**
 * Two failed checks take a server out: one check slowed past its timeout on a
 * busy machine (tests run in parallel) must not take out the only server left
 * while the other restarts.
 */
const FALL = 2;
const CHECK_TIMEOUT_MS = 500;
/** Longer than FALL check intervals plus the check timeout: the balancer has seen DISABLED before the listeners close. */
const DRAIN_DELAY_MS = FALL * INTER_MS + CHECK_TIMEOUT_MS + 300;

function config(front: number, a: number, b: number, stats: string): string {
  return `global
    maxconn 1000
    stats socket ${stats} mode 600 level user
defaults
    mode http
    option http-keep-alive
    timeout connect 1s
    timeout client 30s
    timeout server 30s
    timeout check ${CHECK_TIMEOUT_MS}ms
    retries 3
    option redispatch
frontend fe
    bind 127.0.0.1:${front}
    default_backend be
backend be
    balance roundrobin
    option httpchk GET /ecv
    http-check expect status 200
    default-server inter ${INTER_MS}ms fall ${FALL} rise 1
    server a 127.0.0.1:${a} check
    server b 127.0.0.1:${b} check
`;
}

/** HAProxy's own view of a server: its status column in `show stat` (UP, DOWN, MAINT, "UP 1/2"...). */
function serverStatus(sock: string, backend: string, server: string): Promise<string | undefined> {
  return new Promise((resolve) => {
    const c = net.connect(sock);
    let out = '';
    c.setEncoding('utf8');
    c.on('data', (d) => (out += d));
    c.on('error', () => resolve(undefined));
    c.on('close', () => {
      const header = out.split('\n')[0].replace(/^# /, '').split(',');
      const at = header.indexOf('status');
      const row = out
        .split('\n')
        .map((l) => l.split(','))
        .find((f) => f[0] === backend && f[1] === server);
      resolve(row && at >= 0 ? row[at] : undefined);
    });
    c.end('show stat\n');
  });
}

t.test(
  'HAProxy health-checks ECV: disable takes an instance out, rolling restarts fail 0 requests',
  { skip: HAPROXY ? false : 'haproxy is not installed (apt-get install -y haproxy)' },
  async (t) => {
    const [front, portA, portB] = await freePorts(3);
    const instance = (port: number) =>
      startApp(t, {
        opts: { port, noWorkers: 2, drainDelay: DRAIN_DELAY_MS, gracefulTimeout: 10_000, ecv: { control: true } },
      });
    const apps: Record<'A' | 'B', App> = { A: await instance(portA), B: await instance(portB) };

    const dir = tmpdir('c2-haproxy-');
    const cfg = path.join(dir, 'haproxy.cfg');
    const stats = path.join(dir, 'stats.sock');
    fs.writeFileSync(cfg, config(front, portA, portB, stats));
    await everyInstanceInRotation(startBalancer(t, 'haproxy', [HAPROXY!, '-f', cfg, '-db']), front, apps);

    const load = startLoad(front, { connections: 8 });
    const res = load.result;
    const served = (app: App) => app.workers().reduce((n, p) => n + (res.byPid[p] ?? 0), 0);
    /** Resolves once `app` has served n more responses through the balancer. */
    const servesAgain = async (app: App, n = 50) => {
      const target = served(app) + n;
      await until(() => served(app) >= target, 15_000, `instance ${app.pid} back in rotation`);
    };
    await load.served(500);
    t.ok(served(apps.A) > 0 && served(apps.B) > 0, 'the load reaches both instances');

    // 1. Disable A: out of rotation within FALL check intervals (plus the check in flight).
    const d = await request(portA, '/ecv/disable', { method: 'POST' });
    t.equal(d.status, 204);
    const t0 = Date.now();
    let last = served(apps.A);
    let lastAt = t0;
    const watch = setInterval(() => {
      const n = served(apps.A);
      if (n !== last) {
        last = n;
        lastAt = Date.now();
      }
    }, 5);
    // HAProxy's own view: A is DOWN once FALL checks have failed.
    await until(
      async () => /^DOWN/.test((await serverStatus(stats, 'be', 'a')) ?? ''),
      15_000,
      'HAProxy to mark server a DOWN (show stat)',
    );
    t.pass(`HAProxy marked A DOWN ${Date.now() - t0} ms after POST /ecv/disable`);
    const settled = served(apps.A);
    const bBefore = served(apps.B);
    await new Promise((r) => setTimeout(r, 1000));
    clearInterval(watch);
    t.equal(served(apps.A), settled, 'no response from A for a second once it was disabled');
    t.ok(served(apps.B) > bBefore, 'B takes all the traffic');
    t.comment(
      `last response from A ${lastAt - t0} ms after POST /ecv/disable (check interval ${INTER_MS} ms, fall ${FALL})`,
    );
    t.equal((await request(portA, '/ecv/enable', { method: 'POST' })).status, 204);
    await servesAgain(apps.A);
    t.pass('enabled again: A is back in rotation');

    // 2. Rolling restart: A, then B; each shut down gracefully and started again on its port.
    await rollingRestart(t, apps, { A: portA, B: portB }, instance, servesAgain);
    await load.served(500);
    const r = await load.stop();
    t.comment(`through haproxy: ${r.ok} ok, ${r.failed} failed ${JSON.stringify(r.errors)}`);
    t.equal(r.failed, 0, 'no request failed during disable, enable and the two restarts');
    t.ok(r.ok > 1000);
  },
);
