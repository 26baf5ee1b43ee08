'use strict';
// The no-master reference: one of N independent single-process servers on the
// same port, each with its own SO_REUSEPORT socket (the addon's listen(), or
// Node's own reusePort option where it exists). No supervision, no drain.
// BENCH_PORT, BENCH_HOST; prints {"ev":"listening","args":[pid,port],"t"} on stdout.
const http = require('node:http');
const { handler } = require('./handler');
const { now } = require('./clock');

const host = process.env.BENCH_HOST || '127.0.0.1';
const port = Number(process.env.BENCH_PORT);
const server = http.createServer(handler);
const how = process.env.BENCH_REUSEPORT || 'native';

server.once('listening', () => {
  process.stdout.write(`${JSON.stringify({ ev: 'listening', args: [process.pid, server.address()], t: now() })}\n`);
});
if (how === 'native') {
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
