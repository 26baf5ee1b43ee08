// The runtimes cluster2 runs on, and what it does differently on each. docs/runtimes.md
// gives the figures.
//
//  Node >= 20  everything, as designed.
//  Bun >= 1.4  everything. (Bun 1.3 refused: "Bun does not support listening on a file
//              descriptor", and its node:cluster could not share a socket.) Bun's http.Server and https.Server cannot listen on a socket they
//              are given (they run on Bun.serve, which binds by itself), so they accept
//              through a net.Server that hands them each connection (lib/worker/bridge.ts).
//              A master says so in one line at start. Bun's net.Server, tls.Server,
//              node:cluster, descriptor passing and N-API (the addon) work as Node's do.
//  Deno        refused at start (exit 78). Its node:cluster and child_process start a
//              cluster that serves, but in cluster2's lose-nothing tests (Deno 2.9.6)
//              requests timed out while workers were replaced or removed: up to 19 of
//              ~70,000 in 8 s of recycles with a spare worker, and a resize under new
//              connections stalled. cluster2 does not run where it cannot keep its
//              promise of no lost request.

import { EXIT_CONFIG } from '../shared/exit-codes';
import { runtime, runtimeLabel, type Runtime } from '../shared/js-runtime';
import { StartError } from '../shared/start-error';

/** The oldest Bun cluster2 is tested on. */
export const MIN_BUN = '1.4.0';

function older(version: string, than: string): boolean {
  const a = version.split('.').map((n) => parseInt(n, 10) || 0);
  const b = than.split('.').map((n) => parseInt(n, 10) || 0);
  for (let i = 0; i < 3; i++) if ((a[i] ?? 0) !== (b[i] ?? 0)) return (a[i] ?? 0) < (b[i] ?? 0);
  return false;
}

/** Why cluster2 does not run on this runtime, in one line; null when it does. */
export function runtimeProblem(r: Runtime = runtime): string | null {
  if (r.name === 'deno') {
    return (
      `cluster2: ${runtimeLabel(r)} is not supported: its Node compatibility loses requests while workers ` +
      'are replaced or removed (reload, recycle, resize), which cluster2 exists to prevent; run it with ' +
      `Node >= 20 or Bun >= ${MIN_BUN.replace(/\.0$/, '')}`
    );
  }
  if (r.name === 'bun' && older(r.version, MIN_BUN)) {
    return (
      `cluster2: ${runtimeLabel(r)} is too old: cluster2 needs Bun >= ${MIN_BUN.replace(/\.0$/, '')}, whose ` +
      'net.Server can listen on a socket it is given and whose node:cluster shares one (`bun upgrade`), or Node >= 20'
    );
  }
  return null;
}

/**
 * The one line a master (or the single process) prints at start on a runtime where
 * cluster2 does something differently, saying what and why; null on Node.
 */
export function runtimeNote(r: Runtime = runtime): string | null {
  if (r.name !== 'bun') return null;
  return (
    `cluster2: on ${runtimeLabel(r)}, an http or https server accepts through a net.Server that hands it ` +
    "each connection, because Bun's HTTP server cannot listen on a socket it is given; net servers listen " +
    'as on Node'
  );
}

/**
 * At start, before anything is created, forked or bound: a StartError (exit 78, EX_CONFIG)
 * saying why on a runtime cluster2 does not run on; otherwise the runtime's note (or null),
 * for the caller to print.
 */
export function checkRuntime(r: Runtime = runtime): string | null {
  const problem = runtimeProblem(r);
  if (problem) throw new StartError(problem, EXIT_CONFIG);
  return runtimeNote(r);
}
