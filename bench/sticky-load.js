'use strict';
// The load of bench/sticky.js, in a process of its own (forked, driven over
// IPC). For each target (a port) and each of `addresses` source addresses in
// 127.0.0.0/8, one closed loop sending its next request on a new connection
// (the accept path) as soon as the previous answer arrives; the targets' loops
// are interleaved, so targets loaded together share the same moments of a busy
// machine. Counts, per target, successes (after the warm-up), by pid and by
// address (which pids each address reached), and failures by kind.
//
// IPC: parent sends {cmd:'start', ports, addresses, warmup (ms)}; child answers {started}
//      after the warm-up; parent later sends {cmd:'stop'} and gets {results} (one per port).
const http = require('node:http');

/** The n-th local source address: 127.0.x.y from 127.0.0.2 on (127.0.0.1 left alone). */
function address(i) {
  return `127.0.${Math.floor(i / 250)}.${(i % 250) + 2}`;
}

/**
 * @typedef {{ cmd: 'start', ports: number[], addresses: number, warmup?: number }} StartCommand
 * @typedef {StartCommand | { cmd: 'stop' }} LoadCommand what the parent sends
 */

/**
 * Start the loops; `started()` after the warm-up.
 * @param {StartCommand} o
 * @param {() => void} started
 * @returns {() => Promise<object[]>} stop: one result per port
 */
function run(o, started) {
  const results = o.ports.map(() => ({
    ok: 0,
    failed: 0,
    errors: {},
    byPid: {},
    byAddress: {},
    counted: 0,
    seconds: 0,
  }));
  let counting = false;
  let running = true;
  let t0 = 0;
  const one = (r, port, localAddress) =>
    new Promise((resolve) => {
      let settled = false;
      const done = (kind, pid) => {
        if (settled) return;
        settled = true;
        if (kind === null) {
          r.ok++;
          if (counting) r.counted++;
          r.byPid[pid] = (r.byPid[pid] || 0) + 1;
          const seen = (r.byAddress[localAddress] ||= []);
          if (!seen.includes(pid)) seen.push(pid);
        } else {
          r.failed++;
          r.errors[kind] = (r.errors[kind] || 0) + 1;
        }
        resolve();
      };
      const req = http.get(
        { host: '127.0.0.1', port, path: '/', agent: false, localAddress, timeout: 10_000 },
        (res) => {
          let body = '';
          res.setEncoding('utf8');
          res.on('data', (d) => {
            body += d;
          });
          res.on('end', () =>
            res.statusCode === 200 ? done(null, body.slice(body.indexOf(' ') + 1)) : done(`status-${res.statusCode}`),
          );
          res.on('error', (/** @type {NodeJS.ErrnoException} */ e) => done(e.code || e.message));
        },
      );
      req.on('timeout', () => req.destroy(Object.assign(new Error('timeout'), { code: 'timeout' })));
      req.on('error', (/** @type {NodeJS.ErrnoException} */ e) => done(e.code || e.message));
    });
  const loops = [];
  for (let i = 0; i < o.addresses; i++) {
    o.ports.forEach((port, k) =>
      loops.push(
        (async () => {
          while (running) await one(results[k], port, address(i));
        })(),
      ),
    );
  }
  setTimeout(() => {
    counting = true;
    t0 = performance.now();
    started();
  }, o.warmup || 0);
  return async () => {
    counting = false;
    const seconds = (performance.now() - t0) / 1000;
    running = false;
    await Promise.all(loops);
    for (const r of results) r.seconds = seconds;
    return results;
  };
}

let stop = null;
process.on('message', async (/** @type {LoadCommand} */ m) => {
  if (m.cmd === 'start') stop = run(m, () => process.send({ started: true }));
  if (m.cmd === 'stop' && stop) {
    process.send({ results: await stop() });
    process.disconnect();
  }
});

module.exports = { address };
