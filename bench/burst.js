'use strict';
// A burst of new connections, each with one request, and how each one ended.
// Used by the shutdown-burst scenario and by the tests (test/helpers/burst.ts).
const http = require('node:http');

/**
 * Fire `n` requests at once, each on a new connection. `connected` resolves once
 * every one has connected or failed; `done` once every one has ended, with counts:
 * answered; refused (ECONNREFUSED: no listener, nothing was sent); reset
 * (ECONNRESET on a completed connection: the request may have run); hangup
 * ('socket hang up': closed without an answer); other (by kind); closing
 * (answers that carried `Connection: close`).
 */
function burst(port, n, path = '/slow?ms=20', host = '127.0.0.1') {
  const r = { answered: 0, refused: 0, reset: 0, hangup: 0, other: {}, closing: 0 };
  let pending = n;
  let unconnected = n;
  let onConnected;
  let onDone;
  const connected = new Promise((resolve) => {
    onConnected = resolve;
  });
  const done = new Promise((resolve) => {
    onDone = resolve;
  });
  const tally = (fail) => {
    if (!fail) r.answered++;
    else if (fail.message === 'socket hang up') r.hangup++;
    else if (fail.code === 'ECONNREFUSED') r.refused++;
    else if (fail.code === 'ECONNRESET') r.reset++;
    else r.other[fail.code || fail.message] = (r.other[fail.code || fail.message] || 0) + 1;
    if (--pending === 0) onDone(r);
  };
  for (let i = 0; i < n; i++) {
    let counted = false;
    let finished = false;
    const once = () => {
      if (!counted) {
        counted = true;
        if (--unconnected === 0) onConnected();
      }
    };
    const end = (e) => {
      if (!finished) {
        finished = true;
        tally(e);
      }
    };
    const req = http.get({ host, port, path, agent: false, timeout: 60_000 }, (res) => {
      res.resume();
      res.on('end', () => {
        if (res.headers.connection === 'close') r.closing++;
        end(
          res.statusCode === 200
            ? undefined
            : { code: `status-${res.statusCode}`, message: `status-${res.statusCode}` },
        );
      });
      res.on('error', end);
    });
    req.on('socket', (s) => s.once('connect', once));
    req.on('timeout', () => req.destroy(Object.assign(new Error('client timeout'), { code: 'TIMEOUT' })));
    req.on('error', (e) => {
      once();
      end(e);
    });
  }
  return { connected, done };
}

module.exports = { burst };
