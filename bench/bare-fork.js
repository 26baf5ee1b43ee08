'use strict';
// The physical limit of a replacement: a bare child_process.fork() of the same
// app (bench/apps/bare.js, no cluster2) until its server listens.
const { fork, spawn } = require('node:child_process');
const path = require('node:path');
const { now } = require('./apps/clock');
const { serverEnv } = require('./servers');

const BARE = path.join(__dirname, 'apps', 'bare.js');

/** @typedef {{ listening: number, loaded: number, at: number }} BareReady the message of bench/apps/bare.js */

/**
 * ms from fork() to the 'listening' message of the bare app, and the app's own
 * account: ms from its start to its code loaded (`loaded`) and to listening (`at`).
 */
function bareFork(pin) {
  const env = serverEnv();
  const t0 = now();
  const child =
    pin && pin.length
      ? spawn(pin[0], [...pin.slice(1), process.execPath, BARE], {
          env,
          stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
        })
      : fork(BARE, [], { env, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error('the bare app did not listen within 10 s'));
    }, 10_000);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`the bare app exited (${code}) before listening`));
    });
    child.once('message', (/** @type {BareReady} */ m) => {
      const ms = now() - t0;
      clearTimeout(timer);
      child.removeAllListeners('exit');
      child.once('exit', () => resolve({ ms, loaded: m.loaded, listening: m.at }));
      child.kill('SIGKILL');
    });
  });
}

module.exports = { bareFork };
