#!/usr/bin/env node
import * as fs from 'node:fs';
import * as path from 'node:path';
import { appCallback, mergeOptions, packageOptions, resolveApp } from './app-module';
import { parseArgs, shortUsage, usage, UsageError, type Parsed } from './args';
import { Cluster } from '../cluster';
import { EXIT_COMMAND_FAILED, EXIT_CONFIG, EXIT_NOT_RUNNING, EXIT_USAGE, exitProcess } from '../shared/exit-codes';
import { resolveOptions } from '../shared/options';
import { exitWith, StartError } from '../shared/start-error';
import { ENV, type FromWorker } from '../shared/ipc';
import type { ClusterOptions } from '../shared/options';

/**
 * The `cluster2` command. `start` runs the master in this process (so its exit
 * codes, 69 for a busy port and 70 for a crash loop, are the command's), and
 * the workers re-run the same command line (the master forks process.argv[1]
 * with process.argv.slice(2)), so `start` is also the workers' entry point.
 * The other commands talk to a running master over its control socket.
 */

// A worker runs this script too: what only the master (its log lines) and the
// other commands (the control client) need is loaded where they run, so a
// worker loads what a worker started through the API loads, and no more
// (test/lean-worker.test.ts).
const lazy = {
  output: () => require('./output') as typeof import('./output'),
  control: () => require('../client/control') as typeof import('../client/control'),
  safeText: () => require('../shared/safe-text') as typeof import('../shared/safe-text'),
};

const DEFAULT_TIMEOUT_MS = { status: 10_000, other: 120_000 };

function version(): string {
  try {
    return JSON.parse(fs.readFileSync(path.join(__dirname, '..', '..', 'package.json'), 'utf8')).version;
  } catch {
    return 'unknown';
  }
}

const err = (s: string) => process.stderr.write(s.endsWith('\n') ? s : `${s}\n`);
const out = (s: string) => process.stdout.write(s.endsWith('\n') ? s : `${s}\n`);

/** Run the command; resolves with the exit code (start: never, while it runs). */
export async function main(argv: readonly string[]): Promise<number> {
  let args: Parsed;
  try {
    args = parseArgs(argv);
  } catch (e) {
    if (!(e instanceof UsageError)) throw e;
    err(`cluster2: ${e.message.replace(/^cluster2: /, '')}\n\n${shortUsage()}`);
    return EXIT_USAGE;
  }
  switch (args.command) {
    case 'help':
      out(usage());
      return 0;
    case 'version':
      out(version());
      return 0;
    case 'start':
      return start(args);
    default:
      return control(args);
  }
}

/** Options of start: the package.json `cluster2` key, then the flags. */
function startOptions(args: Parsed, file: string): { options: ClusterOptions; from: string } {
  const pkg = packageOptions(path.dirname(file));
  const options = mergeOptions(pkg?.options ?? {}, args.options) as ClusterOptions;
  return { options, from: pkg ? `flags and ${pkg.file}` : 'flags' };
}

/** Options refused: 64 when the flags are wrong by themselves (a usage error), else 78 (the package.json's). */
function badPart(args: Parsed, file: string): number {
  if (!packageOptions(path.dirname(file))) return EXIT_USAGE;
  try {
    resolveOptions(args.options as ClusterOptions);
  } catch {
    return EXIT_USAGE;
  }
  return EXIT_CONFIG;
}

async function start(args: Parsed): Promise<number> {
  let c: Cluster;
  let file: string;
  try {
    file = resolveApp(args.app!);
    const { options, from } = startOptions(args, file);
    try {
      c = new Cluster(options);
    } catch (e) {
      throw new StartError(`${(e as Error).message} (options from ${from})`, badPart(args, file));
    }
  } catch (e) {
    const message = (e as Error).message;
    errSafe(message); // it quotes package.json, a path, the app's own error
    // A worker says why to the master, which reports it (a reload's error names it).
    if (process.env[ENV.role] === 'worker' && process.send)
      process.send({ c2: 'boot-error', message } satisfies FromWorker);
    return e instanceof StartError ? e.exitCode : EXIT_USAGE;
  }
  if (c.isWorker) {
    await c.listen(appCallback(file));
    return new Promise(() => {}); // a worker lives until the master tells it to go
  }
  const log = lazy.output().logEvents(c, args.logFormat, err);
  let port = 0; // cluster: false has no status: its port is the one it listens on
  c.on('listening', (_pid, address) => {
    if (address !== null && typeof address === 'object') port = address.port;
  });
  try {
    await c.listen(appCallback(file));
  } catch (e) {
    // One line, the failure's own exit code (68 host, 73 pids directory ...), and no wait for open handles.
    exitWith(e);
  }
  const st = await c.status();
  log('ready', [st ? st.workers.length : 1, st?.port ?? port, c.strategy]);
  // The master runs until shutdown, stop or a crash loop; it exits with its own code.
  return new Promise(() => {});
}

/** The pids directory of a control command: --pids, else the nearest package.json's, else ./pids. */
function controlPids(args: Parsed): string {
  if (typeof args.options.pids === 'string') return path.resolve(args.options.pids);
  const pids = packageOptions(process.cwd())?.options.pids;
  return typeof pids === 'string' ? pids : path.resolve('pids');
}

/** What a control command prints comes from another process: escaped (lib/shared/safe-text.ts). */
const outSafe = (s: string) => out(lazy.safeText().safeLines(s));
const errSafe = (s: string) => err(lazy.safeText().safeLines(s));

async function control(args: Parsed): Promise<number> {
  const cmd = args.command as 'status' | 'reload' | 'shutdown' | 'stop' | 'scale' | 'ecv' | 'upgrade';
  let pids: string;
  try {
    pids = controlPids(args);
  } catch (e) {
    errSafe((e as Error).message);
    return EXIT_USAGE;
  }
  const timeout = args.timeout ?? (cmd === 'status' ? DEFAULT_TIMEOUT_MS.status : DEFAULT_TIMEOUT_MS.other);
  const { controlRequest, endMasters, NotRunning, upgradeMasters } = lazy.control();
  try {
    switch (cmd) {
      case 'status': {
        const all = (await controlRequest(pids, { op: 'status' }, timeout)).map((a) => a.result);
        outSafe(args.json ? JSON.stringify(all) : lazy.output().formatStatus(all));
        return 0;
      }
      case 'reload': {
        const done = await controlRequest(pids, { op: 'reload' }, timeout);
        if (args.json) outSafe(JSON.stringify(done));
        else for (const a of done) outSafe(`master ${a.pid}: reloaded; workers ${a.result.workers.join(', ')}`);
        return 0;
      }
      case 'upgrade': {
        const node = args.node === undefined ? undefined : path.resolve(args.node);
        const r = await upgradeMasters(pids, node, timeout);
        outSafe(
          args.json
            ? JSON.stringify(r)
            : `master ${r.from}: upgraded; master ${r.to} (${r.node}) serves, master ${r.from} retired`,
        );
        return 0;
      }
      case 'scale': {
        const done = await controlRequest(pids, { op: 'scale', ...args.scale }, timeout);
        if (args.json) outSafe(JSON.stringify(done));
        else
          for (const a of done) outSafe(`master ${a.pid}: ${a.result.size} worker(s): ${a.result.workers.join(', ')}`);
        return 0;
      }
      case 'ecv': {
        const done = await controlRequest(pids, { op: 'ecv', enabled: args.ecv! }, timeout);
        if (args.json) outSafe(JSON.stringify(done));
        else for (const a of done) outSafe(`master ${a.pid}: ECV ${a.result.enabled ? 'enabled' : 'disabled'}`);
        return 0;
      }
      default: {
        const done = await endMasters(pids, cmd, timeout);
        if (args.json) outSafe(JSON.stringify(done));
        let code = 0;
        for (const a of done) {
          const killed = a.result.exitCode !== null && a.result.exitCode !== 0;
          if (killed) code = EXIT_COMMAND_FAILED;
          const how = killed
            ? `exited with code ${a.result.exitCode} (workers had to be killed at gracefulTimeout)`
            : 'exited';
          if (!args.json) (killed ? errSafe : outSafe)(`master ${a.pid}: ${cmd}: ${how}`);
        }
        return code;
      }
    }
  } catch (e) {
    const msg = (e as Error).message;
    errSafe(msg.startsWith(`cluster2: ${cmd}`) ? msg : `cluster2: ${cmd} failed: ${msg.replace(/^cluster2: /, '')}`);
    return e instanceof NotRunning ? EXIT_NOT_RUNNING : EXIT_COMMAND_FAILED;
  }
}

if (require.main === module) {
  // A worker that failed before its runtime took over must leave: its IPC channel would keep it alive.
  const end = (code: number) => {
    if (!process.connected) process.exitCode = code;
    else setImmediate(() => exitProcess(code)); // after the IPC message is out
  };
  main(process.argv.slice(2)).then(end, (e: Error) => {
    errSafe(`cluster2: ${e.stack ?? e.message}`);
    end(EXIT_COMMAND_FAILED);
  });
}
