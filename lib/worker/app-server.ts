import * as http from 'node:http';
import type * as net from 'node:net';
import { isServerLike, isThenable } from '../shared/server-like';

/** What the user's listen callback may hand over. */
export type AppServer = net.Server | http.RequestListener;
export type ListenCallback = (cb: (server: AppServer) => void) => AppServer | void | Promise<AppServer | void>;

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (typeof v === 'object') return `an object (${(v as object).constructor?.name ?? 'Object'})`;
  return typeof v;
}

/** Bun.serve()'s server: no listen(), it already listens (a common mistake under Bun, worth naming). */
function bunServeHint(v: unknown): string {
  const s = v as { fetch?: unknown; stop?: unknown; listen?: unknown } | null;
  if (s && typeof s === 'object' && typeof s.fetch === 'function' && typeof s.stop === 'function' && !s.listen) {
    return ' (a Bun.serve() server listens by itself; give cluster2 an http.createServer() server or its handler)';
  }
  return '';
}

/** A value cluster2 can serve: a server (by what it can do) or a request handler function. */
function usable(v: unknown): v is AppServer {
  return typeof v === 'function' || isServerLike(v);
}

/**
 * Run the user's listen callback and get its server: passed to cb(server),
 * returned, or resolved by an async function. A request listener function
 * (an express or koa app) is wrapped in http.createServer.
 *
 * The return value counts only when it is a server, a request handler or a
 * thenable resolving to one of these: anything else (an arrow function that
 * returns setTimeout's Timeout, `(cb) => setTimeout(() => cb(server), 300)`)
 * means waiting for cb(server), as the original cluster2 did. A value given
 * to cb() must be a server or a handler. A callback that never gives one is
 * bounded by the master's listenTimeout.
 */
export async function obtainServer(fn: ListenCallback): Promise<net.Server> {
  if (typeof fn !== 'function') {
    throw new TypeError(`cluster2: listen() takes a function like (cb) => cb(server); got ${describe(fn)}`);
  }
  let passed!: (s: AppServer) => void;
  const viaCallback = new Promise<unknown>((resolve) => {
    passed = resolve;
  });
  const ret: unknown = fn(passed);
  const returned: Promise<unknown> = isThenable(ret)
    ? Promise.resolve(ret).then((v) => (usable(v) ? v : viaCallback))
    : usable(ret)
      ? Promise.resolve(ret)
      : viaCallback;
  const server = await Promise.race([viaCallback, returned]);
  if (typeof server === 'function') return http.createServer(server as http.RequestListener);
  if (isServerLike(server)) return server;
  throw new TypeError(
    'cluster2: the listen callback must give a net.Server, http.Server, https.Server (or any server with listen(), ' +
      "close(), address() and a 'connection' event) or a request handler function; " +
      `got ${describe(server)}${bunServeHint(server)}`,
  );
}
