'use strict';
// The runner's side of bench/client.js (the closed-loop keep-alive client in a
// process of its own), and a short in-process warm-up.
const { fork, spawn } = require('node:child_process');
const http = require('node:http');
const path = require('node:path');
const { serverEnv } = require('./servers');

/**
 * Start a client process; resolves once it is sending. `reconnect()` makes every connection
 * anew; `stop()` resolves with its result:
 * { t0, t1, ok, failed, errors, byPid, timeline, failTimeline, opened, requests? }.
 */
function startClient(o) {
  const script = path.join(__dirname, 'client.js');
  const env = serverEnv();
  const child =
    o.pin && o.pin.length
      ? spawn(o.pin[0], [...o.pin.slice(1), process.execPath, script], {
          env,
          stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
        })
      : fork(script, [], { env, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  let resultResolve;
  const result = new Promise((resolve, reject) => {
    resultResolve = resolve;
    child.once('exit', (code) => reject(new Error(`load client exited (${code}) before its result`)));
  });
  result.catch(() => {});
  return new Promise((resolve, reject) => {
    child.once('error', reject);
    child.on('message', (/** @type {{ started?: number, result?: object }} */ m) => {
      if (m.started) resolve({ started: m.started, pid: child.pid, stop, reconnect });
      else if (m.result) resultResolve(m.result);
    });
    child.send({
      cmd: 'start',
      port: o.port,
      connections: o.connections,
      path: o.path || '/',
      record: !!o.record,
      warmup: o.warmup || 0,
    });
  });
  /** Every loop's next request closes its connection: all are made anew (the reload scenario's control). */
  function reconnect() {
    if (child.connected) child.send({ cmd: 'reconnect' });
  }
  function stop() {
    if (child.connected) child.send({ cmd: 'stop' });
    return result;
  }
}

/** Keep-alive requests from this process for `ms`, so the servers' JIT is warm before a measurement. */
async function warmUp(port, ms = 300, connections = 16) {
  const agent = new http.Agent({ keepAlive: true, maxSockets: connections });
  const end = Date.now() + ms;
  const loop = async () => {
    while (Date.now() < end) {
      await new Promise((resolve) => {
        const req = http.get({ host: '127.0.0.1', port, path: '/', agent }, (res) => {
          res.resume();
          res.on('end', resolve);
        });
        req.on('error', () => setTimeout(resolve, 5));
      });
    }
  };
  await Promise.all(Array.from({ length: connections }, loop));
  agent.destroy();
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

module.exports = { startClient, warmUp, sleep };
