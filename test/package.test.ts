// The package as `npm pack` makes it: its file list, its package.json, its prebuilds.
import t from 'tap';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { tmpdir } from './helpers/cluster';
import { REPO } from './helpers/package';
import { exec, HOST_PREBUILD, pack } from './helpers/tarball';

/** Every file under dir, relative to base, with / separators. */
function walk(dir: string, base = dir): string[] {
  if (!fs.existsSync(dir)) return [];
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    return e.isDirectory() ? walk(p, base) : [path.relative(base, p).split(path.sep).join('/')];
  });
}

/** What the tarball must hold, from the sources: dist (JS and types, no maps), native/, the prebuilds, the docs. */
function expectedFiles(): string[] {
  const out = ['package.json', 'README.md', 'LICENSE', 'binding.gyp'];
  out.push(...walk(path.join(REPO, 'native')).map((f) => `native/${f}`));
  out.push(...walk(path.join(REPO, 'prebuilds')).map((f) => `prebuilds/${f}`));
  for (const f of walk(path.join(REPO, 'lib'))) {
    const m = /^(.*)\.(ts|mts)$/.exec(f);
    if (!m || f.endsWith('.d.ts')) continue;
    const [js, dts] = m[2] === 'mts' ? ['mjs', 'd.mts'] : ['js', 'd.ts'];
    out.push(`dist/${m[1]}.${js}`, `dist/${m[1]}.${dts}`);
  }
  return out.sort();
}

let unpacked: string;
t.before(async () => {
  const tarball = await pack(t);
  unpacked = tmpdir('c2-unpacked-');
  const r = await exec('tar', ['xzf', tarball, '-C', unpacked]);
  if (r.code !== 0) throw new Error(`tar: ${r.stderr}`);
  unpacked = path.join(unpacked, 'package');
});
t.teardown(() => fs.rmSync(path.dirname(unpacked), { recursive: true, force: true }));

t.test(
  'the tarball holds exactly dist, the types, native/, binding.gyp, the prebuilds, README and LICENSE',
  async (t) => {
    const files = walk(unpacked).sort();
    // (packed with --ignore-scripts: a dist/ file left from a removed module shows up here;
    // a real `npm pack` or publish empties dist/ first, in prepack)
    t.same(files, expectedFiles(), 'the file list (stale dist/? rm -rf dist && npm run compile)');
    t.notOk(
      files.some((f) => /^(test|bench|examples|lib|build|scripts)\//.test(f)),
      'no tests, bench, examples, TS sources or build/',
    );
    t.notOk(
      files.some((f) => f.endsWith('.map')),
      'no source maps (their sources are not shipped)',
    );
  },
);

t.test(
  'the prebuild for this machine is in the tarball',
  { skip: !fs.existsSync(HOST_PREBUILD) && 'no prebuild here: run `npm run prebuild`' },
  async (t) => {
    const rel = path.relative(REPO, HOST_PREBUILD);
    t.ok(fs.existsSync(path.join(unpacked, rel)), rel);
  },
);

t.test('package.json: license, engines, os, exports, bin', async (t) => {
  const pkg = JSON.parse(fs.readFileSync(path.join(unpacked, 'package.json'), 'utf8'));
  t.equal(pkg.license, 'MIT');
  t.match(
    fs.readFileSync(path.join(unpacked, 'LICENSE'), 'utf8'),
    /^MIT License\n[\s\S]*Permission is hereby granted, free of charge/,
  );
  t.equal(pkg.engines?.node, '>=20', 'engines: Node 20 and later');
  t.ok(Number(process.versions.node.split('.')[0]) >= 20, 'this Node satisfies engines');
  t.same(pkg.os, ['!win32'], 'os: POSIX (signals, Unix sockets); no cpu field: other CPUs compile or fall back');
  t.equal(pkg.cpu, undefined);
  // every file package.json points at is in the tarball
  const targets: string[] = [];
  const collect = (v: unknown): void => {
    if (typeof v === 'string') targets.push(v);
    else if (v && typeof v === 'object') Object.values(v).forEach(collect);
  };
  collect([pkg.main, pkg.types, pkg.bin, pkg.exports]);
  t.ok(targets.length >= 8, `${targets.length} targets`);
  for (const target of targets) t.ok(fs.existsSync(path.join(unpacked, target)), `${target} is shipped`);
  t.same(Object.keys(pkg.exports).sort(), ['.', './package.json']);
  t.same(Object.keys(pkg.exports['.']).sort(), ['import', 'require'], 'each condition with its own types');
  t.equal(pkg.exports['.'].import.types, './dist/esm.d.mts');
  t.equal(pkg.exports['.'].require.default, pkg.main);
  t.same(pkg.bin, { cluster2: './dist/cli/main.js' });
  t.match(
    fs.readFileSync(path.join(unpacked, pkg.bin.cluster2), 'utf8'),
    /^#!\/usr\/bin\/env node\n/,
    'bin runs through node (npx)',
  );
  t.ok(
    pkg.dependencies['node-gyp-build'] && pkg.dependencies['node-addon-api'],
    'what the loader and a rebuild need are dependencies',
  );
});

const MACHINES: Record<string, number> = { x64: 62, arm64: 183 }; // EM_X86_64, EM_AARCH64
const ALLOWED_LIBS = ['libc.so.6', 'libstdc++.so.6', 'libgcc_s.so.1', 'libm.so.6'];

async function readelf(args: string[], file: string): Promise<string | null> {
  const r = await exec('readelf', [...args, file]).catch(() => null);
  return r && r.code === 0 ? r.stdout : null;
}

for (const arch of Object.keys(MACHINES)) {
  const file = path.join(REPO, 'prebuilds', `linux-${arch}`, 'cluster2.glibc.node');
  const why =
    arch === 'arm64'
      ? 'no linux-arm64 prebuild (npm run prebuild without g++-aarch64-linux-gnu)'
      : 'no prebuild: run `npm run prebuild`';
  t.test(
    `prebuilds/linux-${arch}: an ELF for ${arch} that links only libc and the C++ runtime`,
    { skip: !fs.existsSync(file) && why },
    async (t) => {
      const head = Buffer.alloc(20);
      const fd = fs.openSync(file, 'r');
      fs.readSync(fd, head, 0, 20, 0);
      fs.closeSync(fd);
      t.same([...head.subarray(0, 4)], [0x7f, 0x45, 0x4c, 0x46], 'ELF magic');
      t.equal(head[4], 2, 'ELFCLASS64');
      t.equal(head[5], 1, 'little endian');
      t.equal(head.readUInt16LE(16), 3, 'ET_DYN (a shared object)');
      t.equal(head.readUInt16LE(18), MACHINES[arch], `e_machine ${MACHINES[arch]}`);
      const dynamic = await readelf(['-d', '-W'], file);
      if (!dynamic) return t.pass('skipped', { skip: 'no readelf' });
      const needed = [...dynamic.matchAll(/\(NEEDED\)\s+Shared library: \[([^\]]+)\]/g)].map((m) => m[1]);
      t.ok(needed.includes('libc.so.6'), `needs libc: ${needed.join(', ')}`);
      t.same(
        needed.filter((l) => !ALLOWED_LIBS.includes(l)),
        [],
        'nothing beyond libc, libm, libstdc++ and libgcc_s (its unwinder)',
      );
      const versions = (await readelf(['-V', '-W'], file)) ?? '';
      const glibc = [...versions.matchAll(/GLIBC_(\d+)\.(\d+)/g)].map((m) => Number(m[1]) * 1000 + Number(m[2]));
      t.ok(glibc.length > 0 && Math.max(...glibc) <= 2028, 'needs glibc <= 2.28 (what Node 20 itself needs)');
      t.notOk(/\.debug_info|\.symtab/.test((await readelf(['-S', '-W'], file)) ?? ''), 'stripped');
    },
  );
}
