'use strict';
// The autocannon load generator, as a process of its own. Argument: JSON
// {url, connections, duration, close}. Prints one JSON line: {requests, rps,
// latencies (p50, p99 in ms), errors by kind, byPid, cpu (this process's CPU
// seconds), wall (s)}.
//
// Responses and latencies are counted here, from each client's 'request' and
// 'headers' events, because autocannon's own counters cannot do one request per
// connection: with reconnectRate 1 the response that triggers the reconnect
// returns before 'response' is emitted (so it counts nothing), and with a
// `Connection: close` header it writes its next request into the socket the
// server is closing (so it counts requests nobody answered).
const autocannon = require('autocannon');

const o = JSON.parse(process.argv[2]);
const byPid = {};
const errors = {};
let lat = new Float64Array(1 << 16);
let n = 0;

function record(ms) {
  if (n === lat.length) {
    const bigger = new Float64Array(lat.length * 2);
    bigger.set(lat);
    lat = bigger;
  }
  lat[n++] = ms;
}

function setupClient(client) {
  let start = 0n;
  client.on('request', () => {
    start = process.hrtime.bigint();
  });
  client.on('headers', (h) => {
    record(Number(process.hrtime.bigint() - start) / 1e6);
    if (h.statusCode < 200 || h.statusCode > 299) {
      const k = `status-${h.statusCode}`;
      errors[k] = (errors[k] || 0) + 1;
    }
  });
  client.on('connError', (e) => {
    const k = e.code || e.message;
    errors[k] = (errors[k] || 0) + 1;
  });
  client.on('timeout', () => {
    errors.timeout = (errors.timeout || 0) + 1;
  });
  client.on('body', (b) => {
    const s = b.toString('latin1');
    const pid = s.slice(s.indexOf(' ') + 1);
    byPid[pid] = (byPid[pid] || 0) + 1;
  });
}

const cpu0 = process.cpuUsage();
const t0 = process.hrtime.bigint();
const inst = autocannon(
  {
    url: o.url,
    connections: o.connections,
    duration: o.duration,
    pipelining: 1,
    reconnectRate: o.close ? 1 : 0,
    timeout: 10,
    setupClient,
  },
  (err, res) => {
    const wall = Number(process.hrtime.bigint() - t0) / 1e9;
    const cpu = process.cpuUsage(cpu0);
    if (err) {
      process.stdout.write(`${JSON.stringify({ error: err.message })}\n`);
      process.exit(1);
    }
    const sorted = lat.subarray(0, n).sort();
    const pct = (p) => (n ? sorted[Math.min(n - 1, Math.floor((p / 100) * n))] : null);
    process.stdout.write(
      `${JSON.stringify({
        requests: n,
        rps: n / res.duration,
        p50: pct(50),
        p99: pct(99),
        errors,
        byPid,
        cpu: (cpu.user + cpu.system) / 1e6,
        wall,
        duration: res.duration,
      })}\n`,
    );
  },
);
inst.on('error', () => {});
