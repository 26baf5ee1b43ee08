// The runtime the tests run cluster2 with: the masters (test/fixtures), the `cluster2`
// command and the port probes. Node by default (the one running tap). With
// CLUSTER2_TEST_RUNTIME=bun, Bun: the one CLUSTER2_TEST_BUN names, or the `bun` on PATH.
// The tap runner itself, the load clients and the port holders stay on Node.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { runtimeFromNpm } from './fetched';

export type TestRuntime = 'node' | 'bun';

function onPath(name: string): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
    if (!dir) continue;
    const file = path.join(dir, name);
    try {
      fs.accessSync(file, fs.constants.X_OK);
      return file;
    } catch {
      // not here
    }
  }
  return undefined;
}

function which(): { name: TestRuntime; exec: string } {
  const asked = (process.env.CLUSTER2_TEST_RUNTIME ?? 'node').trim().toLowerCase();
  if (asked === '' || asked === 'node') return { name: 'node', exec: process.execPath };
  // Deno is refused at start (lib/service/runtime-support.ts): test/runtimes.test.ts checks that.
  if (asked !== 'bun') throw new Error(`CLUSTER2_TEST_RUNTIME must be node or bun, got ${JSON.stringify(asked)}`);
  const exec = process.env.CLUSTER2_TEST_BUN || onPath('bun');
  if (!exec) throw new Error('CLUSTER2_TEST_RUNTIME=bun: no bun on PATH (or set CLUSTER2_TEST_BUN to its path)');
  return { name: 'bun', exec };
}

const chosen = which();
/** 'node' or 'bun'. */
export const RUNTIME: TestRuntime = chosen.name;
/** The executable that runs masters, the CLI and probes. */
export const RUNTIME_EXEC: string = chosen.exec;
export const onBun = RUNTIME === 'bun';

/**
 * A runtime for a test that runs one on purpose: CLUSTER2_TEST_BUN or CLUSTER2_TEST_DENO, else
 * PATH, else the version .ci/run pins, fetched from npm once (test/helpers/fetched.ts).
 */
export function findRuntime(name: 'bun' | 'deno'): string {
  return process.env[`CLUSTER2_TEST_${name.toUpperCase()}`] || onPath(name) || runtimeFromNpm(name);
}

/**
 * What `fn` returns when run in the runtime under test (a fresh process, as a master is),
 * as JSON: `fn` is a function of `dist` (the package's dist/ path) whose source is sent.
 */
export function inRuntime<T>(fn: (dist: string) => T, dist: string, env: NodeJS.ProcessEnv = process.env): T {
  const script = `process.stdout.write(JSON.stringify((${fn.toString()})(${JSON.stringify(dist)})))`;
  const r = spawnSync(RUNTIME_EXEC, ['-e', script], { env, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${RUNTIME_EXEC} -e failed (${r.status}): ${r.stderr}`);
  return JSON.parse(r.stdout) as T;
}
