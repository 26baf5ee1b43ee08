// The package's three faces name the same things: dist/index.js (lib/index.ts), the ESM
// entry (lib/esm.mts: `import { X } from 'cluster2'`) and the CommonJS one (lib/cjs.ts:
// require('cluster2').X, and each type as Cluster.X). esm.mts lists the values again (an ESM
// module's names are static, and `export *` of a CommonJS module misses a getter) and cjs.ts
// the types (a namespace has no `export *`): these tests fail when a name is added to
// lib/index.ts and not to them.
import t from 'tap';
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import * as ts from 'typescript';
import { PKG_CWD, PKG_DIST, REPO } from './helpers/package';

/** The names dist/index.js exports at run time. */
const indexNames = Object.keys(require(path.join(PKG_DIST, 'index.js'))).sort();

t.test("import 'cluster2' and require('cluster2') give every value of dist/index.js", async (t) => {
  t.ok(indexNames.includes('Cluster') && indexNames.includes('implementation'), 'dist/index.js', { indexNames });
  const script = [
    "import * as esm from 'cluster2';",
    "import { createRequire } from 'node:module';",
    "const cjs = createRequire(process.cwd() + '/')('cluster2');",
    'console.log(JSON.stringify({ esm: Object.keys(esm), cjs: Object.keys(cjs) }));',
  ].join('\n');
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { cwd: PKG_CWD, encoding: 'utf8' });
  t.equal(r.status, 0, 'the script ran', { stderr: r.stderr });
  const got = JSON.parse(r.stdout) as { esm: string[]; cjs: string[] };
  t.same(got.esm.filter((k) => k !== 'default').sort(), indexNames, 'the named exports of the ESM entry');
  t.ok(got.esm.includes('default'), 'and a default export');
  t.same(got.cjs.sort(), indexNames, "the properties of require('cluster2')");
});

t.test('the declarations: esm.d.mts exports every name of index.d.ts, cjs.d.ts every type', async (t) => {
  const files = ['index.d.ts', 'esm.d.mts', 'cjs.d.ts'].map((f) => path.join(PKG_DIST, f));
  const program = ts.createProgram(files, {
    module: ts.ModuleKind.Node16,
    moduleResolution: ts.ModuleResolutionKind.Node16,
    types: ['node'],
    typeRoots: [path.join(REPO, 'node_modules', '@types')],
    skipLibCheck: true,
    noEmit: true,
  });
  const checker = program.getTypeChecker();
  const exportsOf = (file: string) => {
    const sf = program.getSourceFile(file);
    const sym = sf && checker.getSymbolAtLocation(sf);
    if (!sym) throw new Error(`no module symbol for ${file}`);
    return checker.getExportsOfModule(sym);
  };
  const [index, esm, cjs] = files.map(exportsOf);
  const names = (syms: ts.Symbol[]) => syms.map((s) => s.name).sort();
  // An alias (export { X } from './x') has the meanings of what it stands for.
  const meaning = (s: ts.Symbol) => (s.flags & ts.SymbolFlags.Alias ? checker.getAliasedSymbol(s) : s).flags;

  t.same(
    names(esm).filter((n) => n !== 'default'),
    names(index),
    'esm.d.mts: every name of index.d.ts',
  );
  // `export type *` names the values too, as types only: the values are esm.d.mts's own declarations.
  const values = (syms: ts.Symbol[]) => syms.filter((s) => meaning(s) & ts.SymbolFlags.Value);
  t.same(
    names(esm.filter((s) => !(s.flags & ts.SymbolFlags.Alias) && s.name !== 'default')),
    names(values(index)),
    'esm.d.mts: every value of index.d.ts as a value',
  );
  // cjs.d.ts is `export = Cluster`: its values are the properties of Cluster (typeof index),
  // its module exports the types of the namespace merged with it.
  const types = index.filter((s) => meaning(s) & ts.SymbolFlags.Type);
  t.same(names(cjs), names(types), 'cjs.d.ts: every type of index.d.ts as Cluster.<name>');
});
