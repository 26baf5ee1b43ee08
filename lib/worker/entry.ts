/**
 * The first code of every worker process. The master forks this script with
 * the app's script and arguments after it:
 *
 *   node [the master's node flags] entry.js app.js [args...]
 *
 * A worker forked for a slot (its environment names the slot) runs the app at
 * once. A spare (no slot yet) boots Node, loads cluster2's worker runtime and
 * waits: when a slot needs a worker (recycle, reload, crash, resize) the master
 * sends it the slot, and it runs the app from there. The app's own code is
 * never run before that moment, so a spare has no side effects and a reload
 * still loads the app afresh from disk; what it saves is Node's start and
 * cluster2's load, most of a replacement's boot.
 */
import * as fs from 'node:fs';
import Module = require('node:module');
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';
import { ENV, isToSpare } from '../shared/ipc';
import { runtime } from '../shared/js-runtime';
import { exitProcess, WORKER_DRAINED, WORKER_FAILED } from '../shared/exit-codes';
import { workerLife } from './lifecycle';

const spare = process.env[ENV.slot] === undefined;
let taken = !spare;

// The master's messages reach the worker's lifecycle from its first line: it remembers a drain
// or an ECV change the runtime is not there for yet (an ESM app loads asynchronously), and keeps
// the IPC channel referenced meanwhile.
workerLife().listenToMaster();
// A spare's own: the master may hand over a slot as soon as we said we are booted.
process.on('message', (m: unknown) => {
  if (!isToSpare(m)) return;
  if (m.c2 === 'drain') {
    if (!taken) exitProcess(WORKER_DRAINED);
  } else if (m.c2 === 'takeover' && !taken) {
    takeover(m.env, m.keepFd);
  }
});

const leave = () => exitProcess(WORKER_DRAINED);
function takeover(env: Record<string, string>, keepFd: number | undefined): void {
  taken = true;
  process.off('disconnect', leave);
  process.off('SIGTERM', leave);
  process.removeAllListeners('SIGINT');
  delete process.env[ENV.spareWarm];
  Object.assign(process.env, env);
  closeOtherSockets(keepFd);
  runApp();
}

if (spare) {
  process.on('disconnect', leave);
  process.on('SIGTERM', leave);
  // A worker leads its own process group (lib/shared/process-group.ts): a Ctrl-C at the terminal reaches
  // the master alone. A SIGINT sent to the worker or its group anyway is the master's to decide too.
  process.on('SIGINT', () => {});
  // What every worker loads anyway, loaded now while nothing waits for it.
  require('../cjs');
  require('node:http');
  if (process.connected) process.send!({ c2: 'spare' });
  // Forked on a quiet machine: until a slot comes, compile Node's HTTP code (a takeover stops it at once).
  if (process.env[ENV.spareWarm] === '1') void (require('./warm-up') as typeof import('./warm-up')).warmUp(() => taken);
} else {
  runApp();
}

/** A spare of the reuseport strategy holds every slot's socket until it knows which is its own. */
function closeOtherSockets(keep: number | undefined): void {
  for (const fd of (process.env[ENV.spareFds] ?? '').split(',').filter(Boolean).map(Number)) {
    if (fd !== keep) fs.closeSync(fd);
  }
  delete process.env[ENV.spareFds];
}

/**
 * Run the app's script as node itself runs a main script (CommonJS or ESM, require.main, loaders from
 * the node flags).
 */
function runApp(): void {
  process.argv.splice(1, 1);
  if (runtime.name === 'bun') runWithBun(realMain(process.argv[1]));
  else (Module as unknown as { runMain(main?: string): void }).runMain(process.argv[1]);
}

/**
 * Bun 1.4's Module.runMain runs the script but swallows what it throws (a worker whose app
 * fails at start would live on, never listening, until listenTimeout) and leaves
 * `require.main` on this entry. So under Bun: Bun.main names the app (then
 * `require.main === module` and `import.meta.main` hold in it, as in a script Bun
 * started), and import() loads it, CommonJS or ESM (top-level await included). What it
 * throws is printed with its stack (Bun would show the line that threw it again instead)
 * and the worker exits 1, as Node's does on an uncaught exception.
 */
/** The main script's real path, as Node's runMain takes it (bunx runs a bin through its node_modules/.bin link). */
function realMain(file: string): string {
  const abs = path.resolve(file);
  try {
    return fs.realpathSync(abs);
  } catch {
    return abs; // import() says what is missing
  }
}

function runWithBun(file: string): void {
  (globalThis as unknown as { Bun: { main: string } }).Bun.main = file;
  import(pathToFileURL(file).href).catch((err: unknown) => {
    process.stderr.write(`${err instanceof Error && err.stack ? err.stack : String(err)}\n`);
    exitProcess(WORKER_FAILED);
  });
}
