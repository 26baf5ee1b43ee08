'use strict';
// The no-master reference: one of N independent single-process servers on the
// same port, each with its own SO_REUSEPORT socket (the addon's listen(), or
// Node's own reusePort option where it exists). No supervision, no drain.
// BENCH_PORT, BENCH_HOST; prints {"ev":"listening","args":[pid,port],"t"} on stdout.
//
// Under Bun (bench --runtime bun), an http.Server shares a port with other processes only as a
// node:cluster worker: Bun's own listener then binds with SO_REUSEPORT (it takes neither a
// descriptor nor the reusePort option). So each reference process is a primary with one
// worker, and the worker is the server (its pid is the one in 'listening'); the idle primary
// takes its worker along when it is killed.
const http = require('node:http');
const { handler } = require('./handler');
const { now } = require('./clock');

const cluster = /** @type {import('node:cluster').Cluster} */ (/** @type {unknown} */ (require('node:cluster')));

if (process.versions.bun && cluster.isPrimary) {
  const worker = cluster.fork();
  process.on('SIGTERM', () => {
    worker.process.kill('SIGKILL');
    process.exit(0);
  });
  worker.on('exit', () => process.exit(1));
} else {
  serve();
}

function serve() {
  const host = process.env.BENCH_HOST || '127.0.0.1';
  const port = Number(process.env.BENCH_PORT);
  const server = http.createServer(handler);
  const how = process.env.BENCH_REUSEPORT || 'native';

  server.once('listening', () => {
    process.stdout.write(`${JSON.stringify({ ev: 'listening', args: [process.pid, server.address()], t: now() })}\n`);
  });
  if (process.versions.bun) {
    server.listen({ host, port });
  } else if (how === 'native') {
    const { native } = require('../../dist/shared/native');
    if (!native) {
      process.stderr.write('reference: the native addon is not loaded\n');
      process.exit(2);
    }
    server.listen({ fd: native.listen(host, port, 511, true) });
  } else {
    server.listen({ host, port, reusePort: true });
  }
  process.on('SIGTERM', () => process.exit(0));
}
