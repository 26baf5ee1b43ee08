// Under Bun, the app's http.Server and https.Server cannot take the socket cluster2 gives
// a worker. They are not net.Servers: they run on Bun.serve, which binds host:port
// itself. `listen({ fd })` is ignored (the server binds a random port instead), and
// `reusePort` is ignored outside node:cluster. Bun's net.Server and tls.Server take
// both, and Bun's http server serves a socket handed to it as a 'connection' event, as
// Node's does.
//
// So under Bun such a server gets an acceptor: a net.Server (a tls.Server with the app's
// own TLS options, for https) that listens where the strategy says and hands each
// connection to the app's server. The app's server then reports the acceptor's address,
// 'listening' and errors as its own, and its close() closes the acceptor. Everything
// else (ECV in front, counting, idle timeouts, the drain's `Connection: close`) sees the
// app's server and its sockets, as on Node.
//
// The cost is Bun's HTTP parsing of a handed-over socket, which is JavaScript where its
// own listener's is native: docs/runtimes.md gives the figures.

import * as http from 'node:http';
import * as net from 'node:net';
import type * as tls from 'node:tls';
import { runtime } from '../shared/js-runtime';
import { sweepIdle } from './idle-sweep';

const kAcceptor = Symbol('cluster2.acceptor');
type Bridged = net.Server & { [kAcceptor]?: net.Server };

/**
 * Does this server need an acceptor to listen where cluster2 says? Bun's own HTTP servers
 * (an http.Server that is no net.Server) do. Any other server listens itself: a net.Server,
 * or a library's server that wraps one (its listen() passes the options on).
 */
export function needsAcceptor(server: net.Server, name = runtime.name): boolean {
  return name === 'bun' && server instanceof http.Server && !(server instanceof net.Server);
}

/**
 * The TLS options of a Bun https.Server: Bun keeps what was given to createServer under a
 * symbol of its own ('options'), with no public way to read them back. null for a plain
 * http.Server (no key, cert or pfx there).
 */
export function bunTlsOptions(server: object): tls.TlsOptions | null {
  const own = server as Record<symbol, unknown>;
  for (const key of Object.getOwnPropertySymbols(server)) {
    if (key.description !== 'options') continue;
    const o = own[key] as tls.TlsOptions | null | undefined;
    if (o && typeof o === 'object' && (o.key || o.cert || o.pfx || o.SNICallback)) return o;
  }
  return null;
}

/** Is this Bun http server an https one (it keeps its TLS settings under a 'tls' symbol)? */
function bunServesTls(server: object): boolean {
  const own = server as Record<symbol, unknown>;
  return Object.getOwnPropertySymbols(server).some((k) => k.description === 'tls' && !!own[k]);
}

/**
 * The server that listens for `server`: itself, or (Bun's HTTP servers) a new acceptor
 * wired to it. Idempotent.
 */
export function acceptorFor(server: net.Server): net.Server {
  const s = server as Bridged;
  if (s[kAcceptor]) return s[kAcceptor];
  if (!needsAcceptor(server)) return server;
  let acceptor: net.Server;
  if (bunServesTls(server)) {
    const options = bunTlsOptions(server);
    if (!options) {
      throw new Error(
        "cluster2: under Bun, this https.Server's TLS options could not be read (Bun keeps them internally); " +
          'give cluster2 a tls.Server, or the request handler with the TLS options in an https.createServer of your own',
      );
    }
    // Loaded here: an app without TLS never loads node:tls.
    acceptor = (require('node:tls') as typeof tls).createServer(options);
    acceptor.on('secureConnection', (socket: tls.TLSSocket) => server.emit('connection', socket));
    acceptor.on('tlsClientError', (err: Error, socket: tls.TLSSocket) => server.emit('tlsClientError', err, socket));
  } else {
    acceptor = net.createServer((socket) => server.emit('connection', socket));
  }
  acceptor.on('listening', () => server.emit('listening'));
  acceptor.on('error', (err) => server.emit('error', err));
  s[kAcceptor] = acceptor;
  Object.defineProperty(server, 'listening', { configurable: true, get: () => acceptor.listening });
  server.address = () => acceptor.address();
  server.ref = () => (acceptor.ref(), server);
  server.unref = () => (acceptor.unref(), server);
  server.close = (cb?: (err?: Error) => void) => {
    if (cb) server.once('close', cb);
    if (acceptor.listening) acceptor.close(() => server.emit('close'));
    else process.nextTick(() => server.emit('close'));
    // As Node's http.Server#close: idle kept-alive connections go at once.
    (server as { closeIdleConnections?: () => void }).closeIdleConnections?.();
    return server;
  };
  return acceptor;
}

/** Node closes a kept-alive connection this long after keepAliveTimeout (Node 20 and Bun's own listener alike). */
export const KEEP_ALIVE_BUFFER_MS = 1000;

/**
 * Bun's HTTP server applies keepAliveTimeout on its own listener only: a socket handed to it
 * stayed open after its last response until cluster2's idle timeout closed it (with a
 * warning, as if the client had hung). On an acceptor's server, a connection with no
 * response under way that has been quiet for keepAliveTimeout (and Node's buffer) since its
 * last response is closed, as Node closes it: one sweep for all (lib/worker/idle-sweep.ts),
 * nothing per request. `busy`: a socket with a response under way, or upgraded, which is left
 * alone; so is one that has not been answered yet (Node's keepAliveTimeout starts after a
 * response: before it, the idle timeout is cluster2's).
 */
export function keepAliveOnAcceptor(
  server: net.Server,
  sockets: Iterable<net.Socket>,
  busy: (socket: net.Socket) => boolean,
): void {
  const ms = (server as Partial<http.Server>).keepAliveTimeout;
  if (!(server as Bridged)[kAcceptor] || typeof ms !== 'number' || !(ms > 0)) return;
  const stop = sweepIdle(
    sockets,
    ms + KEEP_ALIVE_BUFFER_MS,
    (s) => s.destroy(),
    (s) => s.bytesWritten === 0 || busy(s),
  );
  (server as Bridged)[kAcceptor]!.once('close', stop);
}

/** The server that listens for `server` once acceptorFor ran (itself when it needs none). */
export function acceptorOf(server: net.Server): net.Server {
  return (server as Bridged)[kAcceptor] ?? server;
}

/** An https server (tls), told without loading node:tls; Bun's https.Server included. */
export function servesTls(server: net.Server): boolean {
  if (typeof (server as { setSecureContext?: unknown }).setSecureContext === 'function') return true;
  return needsAcceptor(server) && bunServesTls(server);
}
