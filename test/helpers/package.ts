// The cluster2 under test: the repository (the default), or an installed copy of the
// package when CLUSTER2_TEST_PACKAGE names its directory (<app>/node_modules/cluster2;
// .ci/run sets it to run the API, strategies, port-busy and CLI tests against what
// users get). The fixtures read the same variable.
//
// One way to load the code under test: the compiled dist/ (never lib/ through ts-node), so
// that tests, fixtures, the forked masters and workers and the `cluster2` command all run
// the same JavaScript. Tests import `../dist/...` (or pkgRequire for what the installed-copy
// run swaps), fixtures `require(process.env.CLUSTER2_TEST_PACKAGE || '../..')`. `npm test`
// compiles first (package.json "pretest": `npm run compile`); when running one file with
// `npx tap test/x.test.ts`, run `npm run compile` after editing lib/.
import * as path from 'node:path';

export const REPO = path.join(__dirname, '..', '..');
const installed = process.env.CLUSTER2_TEST_PACKAGE;
if (installed && path.basename(path.dirname(path.resolve(installed))) !== 'node_modules') {
  throw new Error(`CLUSTER2_TEST_PACKAGE must be <app>/node_modules/cluster2, got ${installed}`);
}
/** The package root under test. */
export const PKG = installed ? path.resolve(installed) : REPO;
/** Its dist/. */
export const PKG_DIST = path.join(PKG, 'dist');
/** A directory where `require('cluster2')` and `import 'cluster2'` resolve to PKG. */
export const PKG_CWD = installed ? path.resolve(PKG, '..', '..') : REPO;
/** A file of the package's dist/, loaded from PKG. */
export function pkgRequire<T>(file: string): T {
  return require(path.join(PKG_DIST, file)) as T;
}
