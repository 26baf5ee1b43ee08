import * as http from 'node:http';
import * as net from 'node:net';

/** What the user's listen callback may hand over. */
export type AppServer = net.Server | http.RequestListener;
export type ListenCallback = (cb: (server: AppServer) => void) => AppServer | void | Promise<AppServer | void>;

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (typeof v === 'object') return `an object (${(v as object).constructor?.name ?? 'Object'})`;
  return typeof v;
}

/**
 * Run the user's listen callback and get its server: passed to cb(server),
 * returned, or resolved by an async function. A request listener function
 * (an express or koa app) is wrapped in http.createServer.
 */
export async function obtainServer(fn: ListenCallback): Promise<net.Server> {
  if (typeof fn !== 'function') {
    throw new TypeError(`cluster2: listen() takes a function like (cb) => cb(server); got ${describe(fn)}`);
  }
  let passed!: (s: AppServer) => void;
  const viaCallback = new Promise<AppServer>((resolve) => {
    passed = resolve;
  });
  const returned = Promise.resolve(fn(passed)).then((v) => (v === undefined || v === null ? viaCallback : v));
  const server = await Promise.race([viaCallback, returned]);
  if (typeof server === 'function') return http.createServer(server);
  if (server instanceof net.Server) return server;
  throw new TypeError(
    'cluster2: the listen callback must give a net.Server, http.Server, https.Server or a request handler function; ' +
      `got ${describe(server)}`,
  );
}
