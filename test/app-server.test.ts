// What the listen callback may hand over (lib/worker/app-server.ts, lib/shared/server-like.ts):
// a server recognised by what it can do, a request handler, or a thenable of one; the return
// value counts only when it is one of these, anything else means waiting for cb(server).
import t from 'tap';
import { EventEmitter } from 'node:events';
import * as http from 'node:http';
import * as net from 'node:net';
import { pkgRequire } from './helpers/package';

const { obtainServer } = pkgRequire<typeof import('../dist/worker/app-server.js')>('worker/app-server.js');
const { isServerLike, isThenable } =
  pkgRequire<typeof import('../dist/shared/server-like.js')>('shared/server-like.js');

/** A server of a library that wraps net.Server instead of extending it. */
function wrapper(): EventEmitter & Record<string, unknown> {
  const w = new EventEmitter() as EventEmitter & Record<string, unknown>;
  w.listen = () => w;
  w.close = () => w;
  w.address = () => null;
  return w;
}

t.test('isServerLike: by what it can do, not by class', async (t) => {
  t.ok(isServerLike(net.createServer()), 'net.Server');
  t.ok(isServerLike(http.createServer()), 'http.Server');
  t.ok(isServerLike(wrapper()), 'a wrapper with listen, close, address and events');
  t.notOk(isServerLike(null));
  t.notOk(
    isServerLike(() => {}),
    'a function is a handler, not a server',
  );
  t.notOk(isServerLike({ listen() {}, close() {} }), 'no events: no server');
  t.notOk(isServerLike(Object.assign(new EventEmitter(), { listen() {} })), 'no close: no server');
  const timer = setTimeout(() => {}, 1);
  t.notOk(isServerLike(timer), 'a Timeout');
  clearTimeout(timer);
});

t.test('isThenable', async (t) => {
  t.ok(isThenable(Promise.resolve()));
  t.ok(isThenable({ then() {} }));
  t.notOk(isThenable({ then: 1 }));
  t.notOk(isThenable(null));
  t.notOk(isThenable(42));
});

t.test('the server comes through cb, the return value or a thenable', async (t) => {
  const server = http.createServer();
  t.equal(await obtainServer((cb) => cb(server)), server, 'cb(server)');
  t.equal(await obtainServer(() => server), server, 'returned');
  t.equal(await obtainServer(async () => server), server, 'an async function');
  const w = wrapper();
  t.equal(await obtainServer((cb) => cb(w as unknown as net.Server)), w, 'a wrapping server, through cb');
  const handler: http.RequestListener = (_req, res) => res.end();
  const wrapped = await obtainServer(() => handler);
  t.ok(wrapped instanceof http.Server, 'a returned handler is wrapped in http.createServer');
  t.same(wrapped.listeners('request'), [handler]);
});

t.test('issue 25: an arrow function returning a Timeout waits for cb(server)', async (t) => {
  const server = http.createServer();
  // The original API's own example, as an arrow function: the Timeout is its return value.
  const got = await obtainServer((cb) => setTimeout(() => cb(server), 300) as unknown as void);
  t.equal(got, server, 'the server given to cb, not the Timeout');
});

t.test('any other return value, or a thenable of one, means waiting for cb', async (t) => {
  const server = net.createServer();
  for (const [what, value] of [
    ['a number', 42],
    ['a string', 'listening soon'],
    ['an object', { port: 3000 }],
    ['true', true],
  ] as const) {
    const got = await obtainServer((cb) => {
      setImmediate(() => cb(server));
      return value as unknown as void;
    });
    t.equal(got, server, `${what} returned: the server from cb`);
  }
  const later = await obtainServer(async (cb) => {
    setTimeout(() => cb(server), 20);
    return setTimeout(() => {}, 0) as unknown as void; // an async arrow returning a Timeout
  });
  t.equal(later, server, 'a thenable resolving to a Timeout: the server from cb');
});

t.test('a value given to cb must be a server or a handler', async (t) => {
  await t.rejects(
    obtainServer((cb) => cb(42 as unknown as net.Server)),
    /the listen callback must give a net\.Server, http\.Server, https\.Server \(or any server with listen\(\), close\(\), address\(\) and a 'connection' event\) or a request handler function; got number/,
  );
  await t.rejects(
    obtainServer((cb) => cb({ port: 3000 } as unknown as net.Server)),
    /got an object \(Object\)$/,
    'an object that cannot listen',
  );
  // What Bun.serve() returns: it listens by itself, and has no listen().
  const bunServe = { fetch() {}, stop() {}, port: 3000, hostname: 'localhost' };
  await t.rejects(
    obtainServer((cb) => cb(bunServe as unknown as net.Server)),
    /a Bun\.serve\(\) server listens by itself; give cluster2 an http\.createServer\(\) server or its handler/,
  );
});

t.test('listen() takes a function; a callback that throws or rejects fails', async (t) => {
  await t.rejects(obtainServer(42 as never), /listen\(\) takes a function like \(cb\) => cb\(server\); got number/);
  await t.rejects(obtainServer(null as never), /got null/);
  await t.rejects(
    obtainServer(() => {
      throw new Error('boom');
    }),
    /boom/,
  );
  await t.rejects(
    obtainServer(async () => {
      throw new Error('async boom');
    }),
    /async boom/,
  );
});
