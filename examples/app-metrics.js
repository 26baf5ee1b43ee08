// The app's own prom-client metrics, aggregated over every worker in the
// master's /metrics. Run: node examples/app-metrics.js, then
// curl localhost:9091/metrics   (PORT and METRICS_PORT override 3000 and 9091)
const Cluster = require('..');
const http = require('node:http');
const client = require('prom-client'); // the app's own prom-client, loaded in every worker

const requests = new client.Counter({ name: 'app_requests_total', help: 'Requests served.', labelNames: ['path'] });
const heap = new client.Gauge({ name: 'app_heap_used_bytes', help: 'V8 heap used by this worker.' });
const duration = new client.Histogram({
  name: 'app_request_duration_seconds',
  help: 'Time to answer.',
  buckets: [0.005, 0.05, 0.5],
});

const server = http.createServer((req, res) => {
  const end = duration.startTimer();
  requests.inc({ path: req.url });
  heap.set(process.memoryUsage().heapUsed);
  res.end('hello\n');
  end();
});

const c = new Cluster({ metrics: { port: Number(process.env.METRICS_PORT) || 9091 }, monPort: false });
c.listen((cb) => cb(server));
