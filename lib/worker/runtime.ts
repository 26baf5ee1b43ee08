import cluster from 'node:cluster';
import * as net from 'node:net';
import { ENV, type FromWorker, type RecycleReason } from '../shared/ipc';
import type { Resolved } from '../shared/options';
import { removePidFile, writePidFile } from '../shared/pids-dir';
import { endOwnGroupAtExit } from '../shared/process-group';
import { guardStdio } from '../shared/safe-stdio';
import { safeLines } from '../shared/safe-text';
import { exitProcess, WORKER_FAILED } from '../shared/exit-codes';
import { sendAppMetrics } from './prom-forward';
import { obtainServer, type ListenCallback } from './app-server';
import { acceptorFor, keepAliveOnAcceptor, servesTls } from './bridge';
import { Instrumented } from './instrument';
import { workerLife } from './lifecycle';
import { EcvState, createEcvFront } from '../shared/ecv';

/** How a worker gets its listening socket, decided by the master. */
export type WorkerListen =
  | { kind: 'fd'; fd: number }
  | { kind: 'reuseport-node'; host: string | undefined; port: number }
  | { kind: 'port'; host: string | undefined; port: number };

function send(m: FromWorker): void {
  if (process.connected) process.send!(m);
}

/** How long a round-robin worker stays after it stopped accepting (see drainAndExit). */
const RR_SETTLE_MS = 100;

/**
 * The life of a worker process: run the app's listen callback, listen where
 * the master says, report, answer heartbeats, drain when told (or when the
 * master disappears) and exit.
 */
export async function runWorker(opts: Resolved, fn: ListenCallback): Promise<void> {
  const env = process.env;
  const pids = opts.pids;
  // The workers share the master's stdout and stderr: a reader gone must not end them either.
  guardStdio((message) => send({ c2: 'warning', message }));
  endOwnGroupAtExit();
  try {
    writePidFile(pids, 'worker');
    process.on('exit', () => removePidFile(pids, 'worker', process.pid));
  } catch (e) {
    // A full disk must not take a serving cluster down: the master tells it.
    send({ c2: 'warning', message: `${(e as Error).message}; the worker serves without it` });
  }
  // A worker leads its own process group (lib/shared/process-group.ts): a Ctrl-C at the terminal reaches
  // the master alone. A SIGINT sent to the worker or its group anyway is the master's to decide too.
  process.on('SIGINT', () => {});

  // node:cluster workers (round-robin, shared) exit at once when the master
  // goes; we drain instead. (node:cluster deletes NODE_UNIQUE_ID at start, so
  // the strategy tells which workers these are.)
  const nodeCluster = env[ENV.strategy] === 'round-robin' || env[ENV.strategy] === 'shared';
  if (nodeCluster) process.removeAllListeners('disconnect');
  // A message to a master that is gone must not crash the worker. node:cluster's
  // Worker object re-emits the channel's errors as its own 'error' (an EPIPE
  // from node:cluster's own 'listening' message once the master is gone):
  // with no listener there, that would be thrown.
  process.on('error', () => {});
  if (nodeCluster) cluster.worker?.on('error', () => {});
  // The master's messages, its disappearance (even SIGKILL) and SIGTERM, from the start: a drain
  // may come before the app's server exists (lib/worker/lifecycle.ts keeps it until serve()).
  const life = workerLife();
  life.listen(opts.drainDelay);

  let server: net.Server;
  let acceptor: net.Server;
  try {
    server = await obtainServer(fn);
    acceptor = acceptorFor(server);
  } catch (e) {
    bootFailure(e);
    return;
  }

  const maxRequests = Number(env[ENV.maxRequests] ?? opts.maxRequests) || 0;
  let recycleAsked = false;
  const inst = new Instrumented(server, {
    timeout: opts.timeout,
    connThreshold: opts.connThreshold,
    maxRequests,
    buckets: opts.requestHistogram,
    warn: (message) => send({ c2: 'warning', message }),
    recycle: (reason: RecycleReason) => {
      if (recycleAsked) return;
      recycleAsked = true;
      send({ c2: 'recycle', reason });
    },
  });
  keepAliveOnAcceptor(server, inst.live(), (s) => !Instrumented.idle(s));
  // The final counts reach the master before the group ending below (registered earlier) blocks.
  process.prependListener('exit', () => send({ c2: 'final', stats: inst.stats() }));
  const ecv = new EcvState();
  const [on, since] = (env[ENV.ecv] ?? '1').split(':');
  ecv.set(on !== '0', Number(since) || ecv.since);
  // A change told while the app's listen callback ran (the worker's lifecycle kept it).
  if (life.ecvTold) ecv.set(life.ecvTold.enabled, life.ecvTold.since);
  if (opts.ecv && (inst.http || inst.h2))
    inst.front = createEcvFront(opts.ecv, ecv, (enabled) => send({ c2: 'ecv-set', enabled }));

  const state = life.serve({
    inst,
    gracefulTimeout: opts.gracefulTimeout,
    // Round-robin: a connection the master handed over just before it learnt that
    // this worker closed is still in the IPC pipe; stay to answer "not accepted"
    // (the master then gives it to another worker) instead of exiting on it.
    settle: env[ENV.strategy] === 'round-robin' ? RR_SETTLE_MS : 0,
    warn: (message) => send({ c2: 'warning', message }),
    ping: (msg) => {
      send({ c2: 'pong', seq: msg.seq, stats: inst.stats() });
      sendAppMetrics(send);
    },
    ecv: (enabled, since) => ecv.set(enabled, since),
  });
  // Told to drain before it listened: it never listens (a round-robin worker that listened now
  // would be handed connections by the master while it leaves).
  if (state === 'draining') return;

  const how = workerListen(opts);
  server.once('error', bootFailure);
  server.once('listening', () => {
    server.removeListener('error', bootFailure);
    const address = server.address();
    const wrong = offPort(address, how);
    if (wrong) return bootFailure(new Error(wrong));
    send({ c2: 'listening', address, tls: servesTls(server) });
  });
  listen(acceptor, how);
}

/**
 * A server that listens somewhere else than on the socket it was given: its listen() did not
 * pass { fd } on (Bun's http.Server, wrapped by a library's server, binds a random port
 * instead). Serving there would look up and reach nobody: the reason, or null.
 */
export function offPort(address: net.AddressInfo | string | null, how: WorkerListen): string | null {
  if (how.kind !== 'fd' || !address || typeof address === 'string') return null;
  const expected = Number(process.env[ENV.port]);
  if (!expected || address.port === expected) return null;
  return (
    `cluster2: the app's server listens on port ${address.port}, not on the socket cluster2 gave it ` +
    `(port ${expected}): its listen() does not pass { fd } on (under Bun, a server that wraps Bun's ` +
    'http.Server); give cluster2 the http.Server itself, or its request handler'
  );
}

function bootFailure(e: unknown): void {
  const message = e instanceof Error ? (e.stack ?? e.message) : String(e);
  // The app's error text, on the master's terminal (a worker shares its stderr): escaped, each line.
  process.stderr.write(`cluster2: worker ${process.pid} failed to start: ${safeLines(message)}\n`);
  send({ c2: 'boot-error', message: e instanceof Error ? e.message : String(e) });
  process.exitCode = WORKER_FAILED;
  // Let the IPC message out before leaving.
  setImmediate(() => exitProcess(WORKER_FAILED));
}

/** Read from the environment how the master wants this worker to listen. */
export function workerListen(opts: Resolved): WorkerListen {
  const env = process.env;
  const port = Number(env[ENV.port] ?? opts.port);
  switch (env[ENV.strategy]) {
    case 'reuseport':
      return { kind: 'fd', fd: Number(env[ENV.fd]) };
    case 'reuseport-node':
      return { kind: 'reuseport-node', host: opts.host, port };
    default:
      // round-robin, shared: the master's own socket, when it has one (node:cluster opens it in the primary).
      if (env[ENV.fd]) return { kind: 'fd', fd: Number(env[ENV.fd]) };
      return { kind: 'port', host: opts.host, port };
  }
}

export function listen(server: net.Server, how: WorkerListen): void {
  switch (how.kind) {
    case 'fd':
      server.listen({ fd: how.fd });
      break;
    case 'reuseport-node':
      server.listen({ host: how.host, port: how.port, reusePort: true } as net.ListenOptions);
      break;
    default:
      server.listen({ host: how.host, port: how.port });
  }
}
