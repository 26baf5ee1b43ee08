'use strict';
// npm test (pretest): make the prebuilds the package tests need (test/package.test.ts,
// test/installed.test.ts), when they are missing or older than the addon's source, with
// `npm run prebuild` (scripts/prebuild.sh: a few seconds). prebuildify moves the host's
// build/Release/cluster2.node into prebuilds/; it is put back, so the repository keeps
// loading its own build as after `npm ci`.
const fs = require('node:fs');
const path = require('node:path');
const { execFileSync } = require('node:child_process');

const root = path.join(__dirname, '..');
const mtime = (f) => {
  try {
    return fs.statSync(path.join(root, f)).mtimeMs;
  } catch {
    return -1;
  }
};
const sources = Math.max(mtime('native/cluster2.cc'), mtime('binding.gyp'));
const host = `prebuilds/${process.platform}-${process.arch}`;
const wanted = [host];
const cross = (() => {
  try {
    execFileSync('sh', ['-c', 'command -v aarch64-linux-gnu-g++'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
})();
if (process.platform === 'linux' && process.arch === 'x64' && cross) wanted.push('prebuilds/linux-arm64');
const stale = wanted.filter((d) => {
  const dir = path.join(root, d);
  const files = fs.existsSync(dir) ? fs.readdirSync(dir).filter((f) => f.endsWith('.node')) : [];
  return files.length === 0 || files.some((f) => mtime(`${d}/${f}`) < sources);
});
if (stale.length === 0) process.exit(0);

console.log(`cluster2: ${stale.join(', ')} missing or older than native/: npm run prebuild`);
const built = path.join(root, 'build', 'Release', 'cluster2.node');
const keep = fs.existsSync(built) ? fs.readFileSync(built) : null;
try {
  // Through npm: node-gyp then gets npm's configuration (nodedir: this machine's headers).
  execFileSync('npm', ['run', '--silent', 'prebuild'], { cwd: root, stdio: ['ignore', 'ignore', 'inherit'] });
} finally {
  if (keep) {
    fs.mkdirSync(path.dirname(built), { recursive: true });
    fs.writeFileSync(built, keep);
  }
}
