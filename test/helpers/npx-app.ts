// A temporary app directory where `npx cluster2` (npm exec) runs the cluster2 under test, as
// it does in a user's project: node_modules/cluster2 is the package, node_modules/.bin/cluster2
// its command (a shell script that execs node on dist/cli.js: same pid, as npm's own link).
import * as fs from 'node:fs';
import * as path from 'node:path';
import { tmpdir } from './cluster';
import { PKG, PKG_DIST } from './package';

export function npxApp(): string {
  const dir = tmpdir('c2npx-');
  fs.writeFileSync(path.join(dir, 'package.json'), JSON.stringify({ name: 'app', version: '1.0.0', private: true }));
  fs.mkdirSync(path.join(dir, 'node_modules', '.bin'), { recursive: true });
  fs.symlinkSync(PKG, path.join(dir, 'node_modules', 'cluster2'));
  const bin = path.join(dir, 'node_modules', '.bin', 'cluster2');
  fs.writeFileSync(bin, `#!/bin/sh\nexec "${process.execPath}" "${path.join(PKG_DIST, 'cli', 'main.js')}" "$@"\n`, {
    mode: 0o755,
  });
  return dir;
}
