// Option metrics: /metrics alone on its own port, read with a Prometheus text
// parser; series by slot (pid in an info metric), per-worker CPU, event-loop
// delay and utilization, heap; Prometheus naming.
import t from 'tap';
import * as http from 'node:http';
import { resolveOptions } from '../dist/shared/options.js';
import { killLeftovers, nth, startApp, tmpdir, until } from './helpers/cluster';
import { request } from './helpers/http';
import { startCli } from './helpers/cli';

const parse = require('parse-prometheus-text-format') as (text: string) => Family[];

const { freePort } = require('./fixtures/monitor-ports.js') as { freePort: () => Promise<number> };

interface Family {
  name: string;
  help: string;
  type: string;
  metrics: { value?: string; labels?: Record<string, string> }[];
}

function get(port: number, p: string, method = 'GET'): Promise<{ status: number; type: string; body: string }> {
  return new Promise((resolve, reject) => {
    http
      .request({ host: '127.0.0.1', port, path: p, method, agent: false }, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (d) => {
          body += d;
        });
        res.on('end', () => resolve({ status: res.statusCode!, type: String(res.headers['content-type']), body }));
      })
      .on('error', reject)
      .end();
  });
}

async function scrape(port: number): Promise<Map<string, Family>> {
  const r = await get(port, '/metrics');
  if (r.status !== 200) throw new Error(`/metrics: ${r.status}`);
  return new Map(parse(r.body).map((f) => [f.name, f]));
}

const values = (f: Family | undefined) => (f?.metrics ?? []).map((m) => Number(m.value));

t.test('metrics: /metrics alone on its own port, by slot, with CPU, event loop and heap per worker', async (t) => {
  const mport = await freePort();
  const app = await startApp(t, { opts: { metrics: { port: mport, host: '127.0.0.1' } } });
  const ev = await app.waitFor('metrics');
  t.match(ev.args[0], { port: mport, address: '127.0.0.1' }, 'a metrics event with the address');
  t.equal((await get(mport, '/logs')).status, 404, 'no /logs there');
  t.equal((await get(mport, '/status')).status, 404, 'no /status there');
  t.equal((await get(mport, '/metrics', 'POST')).status, 405);
  t.match((await get(mport, '/metrics')).type, /^text\/plain; version=0\.0\.4/);

  for (let i = 0; i < 20; i++) await request(app.port, '/');
  let m = new Map<string, Family>();
  await until(
    async () => {
      m = await scrape(mport);
      return (
        (values(m.get('cluster2_requests_total'))[0] ?? 0) >= 20 &&
        values(m.get('cluster2_worker_cpu_seconds_total')).length === 2
      );
    },
    15_000,
    'requests and CPU in /metrics',
  );

  // Prometheus naming: counters end in _total, units in the names of what has one.
  for (const f of m.values()) {
    t.match(f.name, /^[a-z_][a-z0-9_]*$/, `${f.name}: a valid name`);
    if (f.type === 'COUNTER') t.match(f.name, /_total$/, `${f.name}: a counter ends in _total`);
    if (/memory|heap|cpu|time|delay|duration/.test(f.name) && !/_info$/.test(f.name))
      t.match(f.name, /_(bytes|seconds|seconds_total|ratio)$|_bytes_|_seconds_/, `${f.name}: has its unit`);
  }

  const info = m.get('cluster2_worker_info')!;
  t.same(info.metrics.map((x) => x.labels!.slot).sort(), ['0', '1'], 'one info series per slot');
  t.same(
    info.metrics.map((x) => Number(x.labels!.pid)).sort(),
    app.workers().sort(),
    'the pids are in the info metric',
  );
  for (const name of [
    'cluster2_worker_requests_total',
    'cluster2_worker_cpu_seconds_total',
    'cluster2_worker_heap_used_bytes',
    'cluster2_worker_event_loop_utilization_ratio',
  ]) {
    const f = m.get(name)!;
    t.same(
      f.metrics.map((x) => Object.keys(x.labels!)),
      [['slot'], ['slot']],
      `${name}: labelled by slot alone`,
    );
  }
  t.ok(
    values(m.get('cluster2_worker_cpu_seconds_total')).every((v) => v > 0),
    'CPU seconds',
  );
  t.ok(
    values(m.get('cluster2_worker_heap_used_bytes')).every((v) => v > 1e5),
    'heap',
  );
  t.ok(
    values(m.get('cluster2_worker_event_loop_utilization_ratio')).every((v) => v >= 0 && v <= 1),
    'utilization 0..1',
  );
  const delay = m.get('cluster2_worker_event_loop_delay_seconds')!;
  t.same(
    delay.metrics.map((x) => `${x.labels!.slot}/${x.labels!.quantile}`).sort(),
    ['0/0.5', '0/0.99', '1/0.5', '1/0.99'],
    'delay p50 and p99 per slot',
  );
  t.ok(
    delay.metrics.every((x) => Number(x.value) >= 0 && Number(x.value) < 5),
    'delays in seconds',
  );

  // A worker is replaced: the same slots, a new pid in the info metric.
  const [victim] = app.workers();
  process.kill(victim, 'SIGKILL');
  await nth(app, 'listening', 3);
  await until(
    async () => {
      m = await scrape(mport);
      const pids = m.get('cluster2_worker_info')!.metrics.map((x) => Number(x.labels!.pid));
      return pids.length === 2 && !pids.includes(victim);
    },
    15_000,
    'the replacement in the info metric',
  );
  t.same(
    m
      .get('cluster2_worker_info')!
      .metrics.map((x) => x.labels!.slot)
      .sort(),
    ['0', '1'],
    'still slots 0 and 1: no new series',
  );
});

t.test('metrics: the option is checked; the command line takes [HOST:]PORT', async (t) => {
  t.same(resolveOptions({ metrics: 9091 }).metrics, { port: 9091, host: undefined });
  t.same(resolveOptions({ metrics: '0.0.0.0:9091' }).metrics, { port: 9091, host: '0.0.0.0' });
  t.same(resolveOptions({ metrics: '[::1]:9091' }).metrics, { port: 9091, host: '::1' });
  t.same(resolveOptions({ metrics: { port: 0 } }).metrics, { port: 0, host: undefined });
  t.equal(resolveOptions({}).metrics, undefined, 'off by default');
  t.equal(resolveOptions({ metrics: false }).metrics, undefined);
  t.throws(() => resolveOptions({ metrics: 'x' }), /option "metrics" is "x"; it must be a port, "host:port"/);
  t.throws(() => resolveOptions({ metrics: { port: 70000 } }), /option "metrics.port" is 70000/);
  const mport = await freePort();
  const s = await startCli(t, { args: ['--metrics', `127.0.0.1:${mport}`] });
  await until(
    async () => (await scrape(mport).catch(() => null))?.has('cluster2_worker_info'),
    15_000,
    'metrics from cluster2 start',
  );
  t.pass(`cluster2 start --metrics 127.0.0.1:${mport}`);
  void s;
});

t.test(
  "examples/app-metrics.js: the app's prom-client metrics from every worker in the master's /metrics",
  async (t) => {
    const { spawn } = await import('node:child_process');
    const path = await import('node:path');
    const [port, mport] = [await freePort(), await freePort()];
    const p = spawn(process.execPath, [path.join(__dirname, '..', 'examples', 'app-metrics.js')], {
      cwd: tmpdir(),
      env: { ...process.env, PORT: String(port), METRICS_PORT: String(mport), WEB_CONCURRENCY: '2' },
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    });
    let out = '';
    p.stdout!.on('data', (d) => {
      out += d;
    });
    p.stderr!.on('data', (d) => {
      out += d;
    });
    t.teardown(() => killLeftovers(path.join(tmpdir(), 'none'), [p.pid!], p.pid));
    await until(
      async () => (await request(port, '/').catch(() => null))?.status === 200,
      20_000,
      `the example to answer (${out})`,
    );
    // Fresh connections spread over both workers.
    for (let i = 1; i < 40; i++) await request(port, '/');
    let m = new Map<string, Family>();
    await until(
      async () => {
        m = await scrape(mport);
        return (
          values(m.get('app_requests_total'))[0] === 40 && (m.get('app_heap_used_bytes')?.metrics.length ?? 0) === 2
        );
      },
      20_000,
      'the app metrics of both workers',
    );
    const counter = m.get('app_requests_total')!;
    t.equal(counter.type, 'COUNTER');
    t.same(
      counter.metrics.map((x) => [x.labels, Number(x.value)]),
      [[{ path: '/' }, 40]],
      'counters summed over the workers',
    );
    const gauge = m.get('app_heap_used_bytes')!;
    t.same(gauge.metrics.map((x) => x.labels!.slot).sort(), ['0', '1'], 'gauges per worker (slot label)');
    const hist = m.get('app_request_duration_seconds') as unknown as {
      type: string;
      metrics: { count: string; buckets: Record<string, string> }[];
    };
    t.equal(hist.type, 'HISTOGRAM');
    t.equal(Number(hist.metrics[0].count), 40, 'histograms merged: one count over the workers');
    t.equal(Number(hist.metrics[0].buckets['+Inf']), 40);
    const byWorker = (await get(mport, '/metrics')).body;
    t.match(byWorker, /cluster2_worker_requests_total\{slot="0"\} [1-9]/, 'both workers served');
    t.match(byWorker, /cluster2_worker_requests_total\{slot="1"\} [1-9]/);
  },
);

t.test('requestHistogram: a request duration histogram over every worker, kept across a restart', async (t) => {
  t.equal(resolveOptions({}).requestHistogram, undefined, 'off by default');
  t.same(
    resolveOptions({ requestHistogram: true }).requestHistogram,
    [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    "prom-client's buckets",
  );
  t.same(
    resolveOptions({ requestHistogram: '0.01,0.1,1' as never }).requestHistogram,
    [0.01, 0.1, 1],
    'from the command line',
  );
  t.throws(
    () => resolveOptions({ requestHistogram: [0.1, 0.01] }),
    /option "requestHistogram" is \[0\.1,0\.01\]; it must be true, false, or an array of increasing bucket bounds/,
  );
  const mport = await freePort();
  const app = await startApp(t, {
    opts: { metrics: { port: mport, host: '127.0.0.1' }, requestHistogram: [0.02, 0.5, 5] },
  });
  await Promise.all(Array.from({ length: 10 }, () => request(app.port, '/slow?ms=50')));
  for (let i = 0; i < 10; i++) await request(app.port, '/');
  type Hist = { type: string; metrics: { count: string; sum: string; buckets: Record<string, string> }[] };
  let h: Hist | undefined;
  await until(
    async () => {
      h = (await scrape(mport)).get('cluster2_http_request_duration_seconds') as unknown as Hist;
      return Number(h?.metrics[0].count) === 20;
    },
    15_000,
    '20 requests in the histogram',
  );
  t.equal(h!.type, 'HISTOGRAM');
  const b = h!.metrics[0].buckets;
  t.same(Object.keys(b).sort(), ['+Inf', '0.02', '0.5', '5'], 'the buckets given');
  t.ok(Number(b['0.02']) >= 1 && Number(b['0.02']) <= 10, `the fast ones under 20 ms (${b['0.02']})`);
  t.equal(Number(b['0.5']), 20, 'all 20 under 0.5 s, the 10 slow ones (50 ms) included');
  t.ok(Number(h!.metrics[0].sum) >= 0.5, 'the sum in seconds: at least 10 x 50 ms');

  const [victim] = app.workers();
  process.kill(victim, 'SIGKILL');
  await nth(app, 'listening', 3);
  h = (await scrape(mport)).get('cluster2_http_request_duration_seconds') as unknown as Hist;
  t.equal(Number(h.metrics[0].count), 20, "the dead worker's requests stay counted");
});

// Issue 25, item 14: counts that were lost. A retired worker's requests after its last heartbeat
// (its final counts now reach the master as it exits), and recycles and exits that happened before
// the monitor's first GET /metrics (now counted by the master from its start).
t.test('metrics: every request of a retired worker; recycles and exits counted from the start', async (t) => {
  const monPort = await freePort();
  const app = await startApp(t, { opts: { noWorkers: 1, maxRequests: 5, monPort } });
  for (let round = 1; round <= 2; round++) {
    // Five requests to the worker of the moment: the fifth makes it recycle; wait until it exited.
    for (let i = 0; i < 5; i++) t.equal((await request(app.port, '/')).status, 200);
    await nth(app, 'recycled', round, 30_000);
    await nth(app, 'died', round, 30_000);
  }
  // The first scrape of this monitor, at once: nothing left for a pong to bring.
  const r = await get(monPort, '/metrics');
  t.equal(r.status, 200);
  const m = new Map(parse(r.body).map((f) => [f.name, f]));
  t.same(values(m.get('cluster2_requests_total')), [10], 'cluster2_requests_total: all 10 requests');
  const recycles = m.get('cluster2_recycles_total')!.metrics.map((x) => [x.labels, Number(x.value)]);
  t.same(recycles, [[{ reason: 'maxRequests' }, 2]], 'cluster2_recycles_total: both, before the first scrape');
  t.same(values(m.get('cluster2_worker_exits_total')), [2], 'cluster2_worker_exits_total: both');
  const status = JSON.parse((await get(monPort, '/status')).body);
  t.match(status, { retired: { requests: 10 }, recycles: { maxRequests: 2 }, exits: 2 }, 'the status says so too');
});
