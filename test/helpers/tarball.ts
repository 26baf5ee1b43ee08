// The package as users get it: `npm pack` of the repository, and an install of that
// tarball into a fresh app directory whose PATH holds no compiler, make or python.
import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { tmpdir } from './cluster';
import { REPO } from './package';

interface Teardown {
  teardown(fn: () => unknown): void;
}

/** What building the addon needs; none of it may be on the PATH of an install without a compiler. */
export const BUILD_TOOLS = ['cc', 'gcc', 'g++', 'c++', 'clang', 'clang++', 'make', 'gmake', 'python', 'python3'];

/** The prebuild `npm run prebuild` makes for this machine (glibc, as Debian's Node is). */
export const HOST_PREBUILD = path.join(REPO, 'prebuilds', `${process.platform}-${process.arch}`, 'cluster2.glibc.node');

/** npm's own entry scripts (npm-cli.js, npx-cli.js), found through the npm on PATH. */
export function npmScript(name: 'npm-cli.js' | 'npx-cli.js'): string {
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
    const npm = path.join(dir, 'npm');
    if (!fs.existsSync(npm)) continue;
    const file = path.join(path.dirname(fs.realpathSync(npm)), name);
    if (fs.existsSync(file)) return file;
  }
  throw new Error(`no ${name}: npm is not on PATH`);
}

export interface Ran {
  code: number | null;
  stdout: string;
  stderr: string;
}

export function exec(
  file: string,
  args: string[],
  o: { cwd?: string; env?: NodeJS.ProcessEnv; timeout?: number } = {},
): Promise<Ran> {
  return new Promise((resolve) => {
    execFile(
      file,
      args,
      { cwd: o.cwd, env: o.env, timeout: o.timeout ?? 240_000, maxBuffer: 64 << 20 },
      (err, stdout, stderr) => {
        const code = err ? (typeof err.code === 'number' ? err.code : null) : 0;
        resolve({ code, stdout: String(stdout), stderr: String(stderr) });
      },
    );
  });
}

/**
 * `npm pack` of the repository into a fresh directory. No scripts: dist/ is compiled already, and
 * prepack's check that the linux-x64 prebuild is there (a release's, test/pack-prebuilds.test.ts)
 * is not for the tests, which pack with or without prebuilds. Returns the tarball.
 */
export async function pack(t: Teardown): Promise<string> {
  const dir = tmpdir('c2-pack-');
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const r = await exec(
    process.execPath,
    [npmScript('npm-cli.js'), 'pack', '--ignore-scripts', '--json', '--pack-destination', dir],
    {
      cwd: REPO,
      env: userEnv({ PATH: process.env.PATH }),
    },
  );
  if (r.code !== 0) throw new Error(`npm pack failed (${r.code}): ${r.stderr}`);
  const [{ filename }] = JSON.parse(r.stdout) as Array<{ filename: string }>;
  return path.join(dir, filename);
}

/**
 * The environment of a user's shell: no npm_* (so no npm_config_build_from_source),
 * no CLUSTER2_* and no NODE_OPTIONS from the test runner; `extra` on top.
 */
export function userEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (/^npm_/i.test(k) || k.startsWith('CLUSTER2_') || k === 'NODE_OPTIONS') continue;
    env[k] = v;
  }
  return { ...env, ...extra };
}

/** A directory holding only `node` and `sh` (npm runs scripts through sh): a PATH without build tools. */
export function bareBin(t: Teardown): string {
  const dir = tmpdir('c2-bin-');
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  fs.symlinkSync(process.execPath, path.join(dir, 'node'));
  fs.symlinkSync('/bin/sh', path.join(dir, 'sh'));
  return dir;
}

/** Install a tarball into a fresh app directory, with PATH=bin. Returns the app directory and npm's output. */
export async function install(
  t: Teardown,
  tarball: string,
  bin: string,
): Promise<{ app: string; pkg: string; ran: Ran }> {
  const app = tmpdir('c2-app-');
  t.teardown(() => fs.rmSync(app, { recursive: true, force: true }));
  fs.writeFileSync(path.join(app, 'package.json'), JSON.stringify({ name: 'app', version: '1.0.0', private: true }));
  const ran = await exec(
    process.execPath,
    [
      npmScript('npm-cli.js'),
      'install',
      tarball,
      '--no-audit',
      '--no-fund',
      '--prefer-offline',
      '--foreground-scripts',
    ],
    { cwd: app, env: userEnv({ PATH: bin }) },
  );
  if (ran.code !== 0) throw new Error(`npm install failed (${ran.code}):\n${ran.stdout}\n${ran.stderr}`);
  return { app, pkg: path.join(app, 'node_modules', 'cluster2'), ran };
}

/** The tarball with its prebuilds/ taken out (what a platform without a matching prebuild gets). */
export async function withoutPrebuilds(t: Teardown, tarball: string): Promise<string> {
  const dir = tmpdir('c2-repack-');
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const x = await exec('tar', ['xzf', tarball, '-C', dir]);
  if (x.code !== 0) throw new Error(`tar x: ${x.stderr}`);
  fs.rmSync(path.join(dir, 'package', 'prebuilds'), { recursive: true, force: true });
  const out = path.join(dir, 'no-prebuilds.tgz');
  const c = await exec('tar', ['czf', out, '-C', dir, 'package']);
  if (c.code !== 0) throw new Error(`tar c: ${c.stderr}`);
  return out;
}
