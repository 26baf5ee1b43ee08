// `npm pack` and `npm publish` refuse a package without the linux-x64 prebuild (issue 25, item 12),
// unless CLUSTER2_PACK_SOURCE_ONLY=1 says a source-only package is meant. Run in a copy of the
// package's top level (the repository's own dist/ is not touched: prepack empties dist/).
import t from 'tap';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { tmpdir } from './helpers/cluster';
import { REPO } from './helpers/package';
import { exec, npmScript, userEnv } from './helpers/tarball';

const PREBUILD = path.join('prebuilds', 'linux-x64', 'cluster2.glibc.node');

/** The package's top level, copied: package.json (prepare, tsc, made a no-op: not what is tested), the check. */
function copy(t: { teardown(fn: () => void): void }): string {
  const dir = tmpdir('c2-packcheck-');
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const pkg = JSON.parse(fs.readFileSync(path.join(REPO, 'package.json'), 'utf8'));
  pkg.scripts.prepare = 'true';
  fs.writeFileSync(path.join(dir, 'package.json'), JSON.stringify(pkg, null, 2));
  for (const f of ['README.md', 'LICENSE', 'binding.gyp', 'scripts/check-prebuilds.js', 'native/cluster2.cc']) {
    fs.mkdirSync(path.dirname(path.join(dir, f)), { recursive: true });
    fs.copyFileSync(path.join(REPO, f), path.join(dir, f));
  }
  return dir;
}

/** `npm pack --dry-run --json` there (prepack runs): exit code, stderr, and the files it would pack. */
async function dryPack(dir: string, env: NodeJS.ProcessEnv = {}) {
  const r = await exec(process.execPath, [npmScript('npm-cli.js'), 'pack', '--dry-run', '--json'], {
    cwd: dir,
    env: userEnv({ PATH: process.env.PATH, ...env }),
  });
  let files: string[] = [];
  try {
    files = (JSON.parse(r.stdout) as { files: { path: string }[] }[])[0].files.map((f) => f.path);
  } catch {
    /* refused: no JSON */
  }
  return { code: r.code, stderr: r.stderr, files };
}

function put(dir: string, content: Buffer): void {
  fs.mkdirSync(path.dirname(path.join(dir, PREBUILD)), { recursive: true });
  fs.writeFileSync(path.join(dir, PREBUILD), content);
}

/** The first 64 bytes of an x86-64 ELF shared object: all the check reads. */
function elfHeader(machine = 62): Buffer {
  const b = Buffer.alloc(64);
  b.writeUInt32BE(0x7f454c46, 0);
  b[4] = 2; // 64-bit
  b[5] = 1; // little-endian
  b[6] = 1;
  b.writeUInt16LE(3, 16); // ET_DYN
  b.writeUInt16LE(machine, 18);
  return b;
}

t.test('prepack runs the check; npm pack --ignore-scripts (the tests) skips it', async (t) => {
  const pkg = JSON.parse(fs.readFileSync(path.join(REPO, 'package.json'), 'utf8'));
  t.match(pkg.scripts.prepack, /^node scripts\/check-prebuilds\.js && /, 'first in prepack (npm pack and publish)');
});

t.test('no prebuild: npm pack refuses, naming npm run prebuild and the variable', async (t) => {
  const dir = copy(t);
  const r = await dryPack(dir);
  t.not(r.code, 0, 'npm pack fails');
  t.match(r.stderr, /cluster2: refusing to pack: prebuilds\/linux-x64\/ does not exist\. Run `npm run prebuild` first/);
  t.match(r.stderr, /set CLUSTER2_PACK_SOURCE_ONLY=1 to pack a package without it/);
  const other = await dryPack(dir, { CLUSTER2_PACK_SOURCE_ONLY: 'yes' });
  t.not(other.code, 0, 'another value is not the opt-out');
  t.match(other.stderr, /CLUSTER2_PACK_SOURCE_ONLY is "yes", only 1 means that/);
});

t.test('a file there that is not an x86-64 ELF: refused', async (t) => {
  const dir = copy(t);
  put(dir, Buffer.from('not a binary\n'));
  const r = await dryPack(dir);
  t.not(r.code, 0);
  t.match(r.stderr, /prebuilds\/linux-x64\/cluster2\.glibc\.node is not an x86-64 ELF shared object/);
  put(dir, elfHeader(183)); // aarch64
  t.not((await dryPack(dir)).code, 0, 'an arm64 build in the x64 directory: refused');
});

t.test('CLUSTER2_PACK_SOURCE_ONLY=1: a source-only package, said so', async (t) => {
  const dir = copy(t);
  const r = await dryPack(dir, { CLUSTER2_PACK_SOURCE_ONLY: '1' });
  t.equal(r.code, 0, 'packed', { stderr: r.stderr });
  t.match(r.stderr, /cluster2: packing a source-only package \(CLUSTER2_PACK_SOURCE_ONLY=1\)/);
  t.notOk(
    r.files.some((f) => f.startsWith('prebuilds/')),
    'no prebuilds in it',
  );
  t.ok(r.files.includes('binding.gyp'), 'the sources are');
});

t.test('with the linux-x64 prebuild: packed, the prebuild in it, no word', async (t) => {
  const dir = copy(t);
  put(dir, elfHeader());
  const r = await dryPack(dir);
  t.equal(r.code, 0, 'packed', { stderr: r.stderr });
  t.ok(r.files.includes(PREBUILD.split(path.sep).join('/')), 'the prebuild is in the package');
  t.notMatch(r.stderr, /cluster2:/, 'nothing said');
});
