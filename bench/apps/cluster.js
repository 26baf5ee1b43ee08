'use strict';
// The cluster2 app under test. Options come as JSON in BENCH_OPTS.
// Master: prints every cluster event as a JSON line {ev, args, t} on stdout
// (t: the shared monotonic clock, ms), and obeys commands read on stdin:
//   reload  -> c.reload(), then {"ev":"reloaded"} or {"ev":"reload-failed"}
//   upgrade -> c.upgrade(), then {"ev":"upgraded","args":[old, new]} or {"ev":"upgrade-failed"}
//              (the new master writes to the same stdout)
// Worker: on SIGUSR2 asks its master to recycle it, through the same IPC
// message the worker runtime sends when maxRequests is reached, and prints
// {"ev":"trigger"} first (this is the bench's "trigger" moment); once it
// listens it prints {"ev":"boot"}: ms from its start to its code starting, its
// code loaded, listening (a worker that was a spare started long before its code).
const appStart = performance.now();
const http = require('node:http');
const readline = require('node:readline');
const Cluster = require('../..');
const { handler } = require('./handler');
const { now } = require('./clock');

// ms since this process started, once cluster2 and the app are loaded.
const loaded = performance.now();

const opts = JSON.parse(process.env.BENCH_OPTS || '{}');
const c = new Cluster(opts);

function print(ev, args) {
  process.stdout.write(`${JSON.stringify({ ev, args, t: now() })}\n`);
}

/** @type {import('../..').ClusterEvent[]} */
const EVENTS = [
  'strategy',
  'forked',
  'spare',
  'listening',
  'died',
  'recycled',
  'warning',
  'exit',
  'SIGTERM',
  'SIGHUP',
  'retired',
];

if (c.isWorker) {
  process.on('SIGUSR2', () => {
    print('trigger', [process.pid]);
    process.send({ c2: 'recycle', reason: 'maxRequests' });
  });
} else {
  for (const ev of EVENTS) c.on(ev, (...args) => print(ev, args));
  readline.createInterface({ input: process.stdin }).on('line', (line) => {
    if (line.trim() === 'upgrade') {
      print('upgrade-start', [process.pid]);
      c.upgrade().then(
        (r) => print('upgraded', [r.from, r.to]),
        (e) => print('upgrade-failed', [e.message]),
      );
      return;
    }
    if (line.trim() !== 'reload') return;
    print('reload-start', []);
    c.reload().then(
      () => print('reloaded', []),
      (e) => print('reload-failed', [e.message]),
    );
  });
}

c.listen((cb) => {
  // BENCH_KIND ws or h2: the long-lived scenarios' servers (bench/long-lived.js).
  const server = process.env.BENCH_KIND
    ? require('./long-lived-server').create(process.env.BENCH_KIND, handler)
    : http.createServer(handler);
  // A worker's boot, on its own clock: {"ev":"boot","args":[pid, loaded, listening, appStart]}.
  if (c.isWorker) server.once('listening', () => print('boot', [process.pid, loaded, performance.now(), appStart]));
  return cb(server);
});
