'use strict';
// A closed-loop keep-alive HTTP client, run as a process of its own (forked by
// the runner, driven over IPC). Each of `connections` loops sends its next
// request as soon as the previous answer arrives. It counts successes per
// 100 ms (the throughput timeline), successes by the pid in the body, and
// failures by kind: an error code (ECONNRESET, ECONNREFUSED, ...), 'socket hang up',
// 'timeout' or 'status-<code>'. With `record`, it keeps every request's start,
// end and outcome, so the runner can tell which requests were in flight at a moment.
//
// IPC: parent sends {cmd:'start', port, connections, path, record, warmup (ms)}
//      child answers {started:t0} after the warm-up; parent may send {cmd:'reconnect'} (each
//      loop's next request asks `Connection: close`: every connection is made anew, as a
//      reload makes it, with no server changed); parent later sends {cmd:'stop'} and gets {result}.
const http = require('node:http');
const { now } = require('./apps/clock');

const SLOT_MS = 100;
const CLOSE = { Connection: 'close' };
/**
 * During the warm-up each loop closes its connection after one request in
 * WARM_CLOSE_EVERY (`Connection: close`), the loops staggered. Without it the
 * client's own JIT knew only kept-alive connections: when a reload closed them
 * all, V8 threw away its optimized HTTP client code ("wrong map",
 * "insufficient type feedback" in tickOnSocket, socketOnData, addRequest, ...)
 * and ran it unoptimized for most of a second. All 50 connections closed and
 * made anew against the same warm servers, no reload at all, cost a dip to
 * 40-55% for 0.6-0.9 s, which the bench counted as the servers' recovery;
 * with this warm-up, next to none.
 */
const WARM_CLOSE_EVERY = 20;

/**
 * @typedef {{ cmd: 'start', port: number, host?: string, connections: number, path?: string, record?: boolean,
 *   warmup?: number }} StartCommand
 * @typedef {StartCommand | { cmd: 'reconnect' } | { cmd: 'stop' }} ClientCommand what the parent sends
 */

function kindOf(e) {
  if (e.message === 'socket hang up') return 'socket hang up';
  return e.code || e.message;
}

/**
 * Start the loops; `started(t0)` after the warm-up.
 * @param {StartCommand} o
 * @param {(t0: number) => void} started
 * @returns {{ stop: () => Promise<object>, reconnect: () => void }} stop: the result
 */
function run(o, started) {
  const agent = new http.Agent({ keepAlive: true, maxSockets: o.connections, maxFreeSockets: o.connections });
  // Connections opened since the warm-up (r.opened): counted where the agent makes one, not per request.
  const createConnection = agent.createConnection;
  agent.createConnection = function (...args) {
    r.opened++;
    return createConnection.apply(this, args);
  };
  const r = {
    t0: now(),
    ok: 0,
    failed: 0,
    errors: {},
    byPid: {},
    timeline: [],
    failTimeline: [],
    opened: 0,
    requests: o.record ? [] : undefined,
  };
  let t0 = r.t0;
  let running = true;
  let warming = true;
  /** Loops whose next request asks to close its connection (the reconnect command). */
  let closeNext = 0;
  const bump = (arr, t) => {
    const slot = Math.floor((t - t0) / SLOT_MS);
    while (arr.length <= slot) arr.push(0);
    arr[slot]++;
  };
  const one = (close) =>
    new Promise((resolve) => {
      const start = now();
      let settled = false;
      const done = (kind, pid) => {
        if (settled) return;
        settled = true;
        const end = now();
        if (kind === null) {
          r.ok++;
          bump(r.timeline, end);
          r.byPid[pid] = (r.byPid[pid] || 0) + 1;
        } else {
          r.failed++;
          r.errors[kind] = (r.errors[kind] || 0) + 1;
          bump(r.failTimeline, end);
        }
        if (r.requests) r.requests.push([start, end, kind]);
        // A refused connection fails at once: do not spin.
        if (kind === 'ECONNREFUSED') setTimeout(resolve, 5);
        else resolve();
      };
      const req = http.get(
        {
          host: o.host || '127.0.0.1',
          port: o.port,
          path: o.path || '/',
          agent,
          timeout: 10_000,
          headers: close ? CLOSE : undefined,
        },
        (res) => {
          let body = '';
          res.setEncoding('utf8');
          res.on('data', (d) => {
            body += d;
          });
          res.on('end', () => {
            if (res.statusCode === 200) done(null, body.slice(body.indexOf(' ') + 1));
            else done(`status-${res.statusCode}`);
          });
          res.on('error', (e) => done(kindOf(e)));
        },
      );
      req.on('timeout', () => req.destroy(Object.assign(new Error('timeout'), { code: 'timeout' })));
      req.on('error', (e) => done(kindOf(e)));
    });
  const loops = Array.from({ length: o.connections }, async (_, i) => {
    for (let n = i; running; n++) {
      let close = warming && n % WARM_CLOSE_EVERY === 0;
      if (closeNext > 0) {
        closeNext--;
        close = true;
      }
      await one(close);
    }
  });
  // The timeline starts after the warm-up (this process's JIT and the servers'); the counts include it.
  setTimeout(() => {
    warming = false;
    r.t0 = t0 = now();
    r.timeline = [];
    r.failTimeline = [];
    r.opened = 0;
    started(t0);
  }, o.warmup || 0);
  const stop = async () => {
    running = false;
    await Promise.all(loops);
    agent.destroy();
    r.t1 = now();
    // The last 100 ms slot is cut short by the stop: leave it out.
    const last = Math.floor((r.t1 - t0) / SLOT_MS);
    r.timeline.length = Math.min(r.timeline.length, last);
    r.failTimeline.length = Math.min(r.failTimeline.length, last);
    return r;
  };
  return {
    stop,
    reconnect() {
      closeNext = o.connections;
    },
  };
}

/** @type {ReturnType<typeof run> | null} */
let client = null;
process.on('message', async (/** @type {ClientCommand} */ m) => {
  if (m.cmd === 'start') {
    client = run(m, (t) => process.send({ started: t }));
  } else if (m.cmd === 'reconnect') {
    if (client) client.reconnect();
  } else if (m.cmd === 'stop' && client) {
    const result = await client.stop();
    process.send({ result }, () => process.exit(0));
  }
});
process.on('disconnect', () => process.exit(0));
