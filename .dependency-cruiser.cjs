// The layers of lib/ (CONTRIBUTING.md draws them): imports point down only.
//
//   entry points   cli/, index.ts, cjs.ts, esm.mts, worker/entry.ts   (the top of a process)
//   cluster.ts     decides the role of the process and hands over to it
//   master/, single.ts          the two roles that stand for the service
//   service/       what master and single share: signals, pid files, port probe, quiesce
//   listen/, worker/, monitor/, client/    each for one purpose, side by side
//   shared/        leaves: options, protocol, exit codes, ECV, events, the native face
//
// Type imports and lazy require()s count as imports (tsPreCompilationDeps).
const layer = (...paths) => `^lib/(${paths.join('|')})`;
const ENTRIES = ['cli/', 'index\\.ts$', 'cjs\\.ts$', 'esm\\.mts$', 'worker/entry\\.ts$'];
const SIDE_BY_SIDE = ['listen/', 'worker/', 'monitor/', 'client/'];

/** `from` (a folder or file of lib/) may import only `allowed` (and itself, and node's and npm's modules). */
function only(name, from, allowed, comment) {
  return {
    name,
    comment,
    severity: 'error',
    from: { path: layer(from), pathNot: layer(...ENTRIES) },
    // (no `allowed`: layer() would match every path of lib/, and the rule would never fire)
    to: { path: '^lib/', pathNot: [layer(from), ...(allowed.length ? [layer(...allowed)] : [])] },
  };
}

module.exports = {
  forbidden: [
    {
      name: 'no-circular',
      comment: 'No cycle, type imports included.',
      severity: 'error',
      from: {},
      to: { circular: true },
    },
    only('shared-is-a-leaf', 'shared/', [], 'lib/shared/ imports nothing else of lib/.'),
    ...SIDE_BY_SIDE.map((dir) =>
      only(
        `${dir.replace('/', '')}-imports-shared-only`,
        dir,
        ['shared/'],
        `lib/${dir} uses lib/shared/ and itself only: it does not reach across or up.`,
      ),
    ),
    only('service-below-the-roles', 'service/', ['shared/', 'monitor/'], 'lib/service/ serves master and single.'),
    only(
      'master-below-cluster',
      'master/',
      ['shared/', 'service/', 'listen/', 'monitor/', 'client/'],
      'lib/master/ never imports the worker runtime, single, cluster or an entry point.',
    ),
    only(
      'single-below-cluster',
      'single\\.ts$',
      ['shared/', 'service/', 'worker/', 'monitor/'],
      'lib/single.ts: one process, the worker runtime and the service.',
    ),
    only(
      'cluster-below-entries',
      'cluster\\.ts$',
      ['shared/', 'service/', 'master/', 'single\\.ts$', 'worker/', 'client/', 'listen/', 'monitor/'],
      'lib/cluster.ts is imported by the entry points only.',
    ),
    {
      name: 'nothing-imports-an-entry',
      comment: 'An entry point is the top of its process: nothing imports it but another entry point.',
      severity: 'error',
      from: { pathNot: layer(...ENTRIES) },
      to: { path: layer(...ENTRIES) },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    exclude: { path: '^(dist|test|bench|examples)/' },
  },
};
