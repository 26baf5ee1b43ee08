'use strict';
// The bench app under PM2 cluster mode (`pm2 start -i N`): the same handler as
// every strategy, on process.env.PORT. Shutdown like a cluster2 worker: on
// SIGINT (what `pm2 stop` / `pm2 reload` send) stop accepting, answer the
// requests in flight (with `Connection: close`), close idle keep-alive
// sockets, exit once the server is closed.
// With BENCH_EVENTS set, appends {"ev":"boot","args":[pid, loaded, listening],"t"}
// to that file when it listens (listening: the shared clock; loaded and
// listening also on the process's own clock, as bench/apps/cluster.js prints).
const fs = require('node:fs');
const http = require('node:http');
const { handler } = require('./handler');
const { now } = require('./clock');

const loaded = performance.now();
let draining = false;

const server = http.createServer((req, res) => {
  if (draining) res.setHeader('Connection', 'close');
  handler(req, res);
});

server.listen(Number(process.env.PORT), process.env.BENCH_HOST || '127.0.0.1', () => {
  if (process.env.BENCH_EVENTS) {
    fs.appendFileSync(
      process.env.BENCH_EVENTS,
      `${JSON.stringify({ ev: 'boot', args: [process.pid, loaded, performance.now()], t: now() })}\n`,
    );
  }
});

process.on('SIGINT', () => {
  if (draining) return;
  draining = true;
  server.close(() => process.exit(0));
  server.closeIdleConnections();
});
