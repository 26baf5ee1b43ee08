// The package's types as a user's project sees them: 'cluster2' resolved
// through node_modules to this package (its exports and declaration files),
// the README's first example and docs/api.md's TypeScript and JavaScript examples compiled with tsc (checkJs)
// under module node16, nodenext and bundler; the four ways to load it compile
// and, run as compiled, construct; listeners are checked.
import t from 'tap';
import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { tmpdir } from './helpers/cluster';
import { docBlocks } from './helpers/doc-blocks';

const root = path.join(__dirname, '..');
const TSC = path.join(root, 'node_modules', 'typescript', 'bin', 'tsc');

/** A project dir with node_modules/cluster2 -> this package, and @types/node. */
function project(files: Record<string, string>): string {
  const dir = tmpdir('c2types-');
  fs.mkdirSync(path.join(dir, 'node_modules', '@types'), { recursive: true });
  fs.symlinkSync(root, path.join(dir, 'node_modules', 'cluster2'), 'dir');
  fs.symlinkSync(
    path.join(root, 'node_modules', '@types', 'node'),
    path.join(dir, 'node_modules', '@types', 'node'),
    'dir',
  );
  fs.writeFileSync(path.join(dir, 'package.json'), JSON.stringify({ name: 'user-app', private: true }));
  for (const [f, v] of Object.entries(files)) fs.writeFileSync(path.join(dir, f), v);
  return dir;
}

function tsc(dir: string, args: string[]): Promise<{ code: number; out: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [TSC, ...args], { cwd: dir, timeout: 120_000 }, (e, stdout, stderr) => {
      resolve({ code: e ? (typeof e.code === 'number' ? e.code : 1) : 0, out: stdout + stderr });
    });
  });
}

const MODES: [string, string][] = [
  ['node16', 'node16'],
  ['nodenext', 'nodenext'],
  ['preserve', 'bundler'],
];
// skipLibCheck: node's own types are not ours to check (and take most of the time); cluster2's
// declarations are still checked where they are used.
const common = [
  '--strict',
  '--noEmit',
  '--allowJs',
  '--checkJs',
  '--skipLibCheck',
  '--target',
  'es2022',
  '--types',
  'node',
];

/** The file name a docs block compiles as: CommonJS when it requires, ESM otherwise. */
function fileFor(block: string, lang: string, i: number): string {
  const cjs = /require\('cluster2'\)/.test(block) && !/^import .* from 'cluster2'/m.test(block);
  return `readme-${i}.${lang === 'ts' ? (cjs ? 'cts' : 'mts') : cjs ? 'cjs' : 'mjs'}`;
}

const FORMS: Record<string, string> = {
  'default.mts': `import Cluster from 'cluster2';\nconst c: Cluster = new Cluster({ port: 0 });\nconsole.log('default', c.options.port, c instanceof Cluster);\n`,
  'named.mts': `import { Cluster } from 'cluster2';\nconst c: Cluster = new Cluster({ port: 0 });\nconsole.log('named', c.options.port, c instanceof Cluster);\n`,
  'require.cts': `const Cluster = require('cluster2');\nconst c = new Cluster({ port: 0 });\nconsole.log('require', c.options.port, c instanceof Cluster);\n`,
  'assign.cts': `import Cluster = require('cluster2');\nconst c: Cluster = new Cluster({ port: 0 });\nconst s: Cluster.MasterStatus | undefined = undefined;\nconsole.log('assign', c.options.port, c instanceof Cluster, s);\n`,
  'named-cjs.cts': `import { Cluster, type MasterStatus } from 'cluster2';\nconst c: Cluster = new Cluster({ port: 0 });\nconst s: MasterStatus | undefined = undefined;\nconsole.log('named-cjs', c.options.port, c instanceof Cluster, s);\n`,
  'require-js.cjs': `// @ts-check\nconst Cluster = require('cluster2');\nconst c = new Cluster({ port: 0 });\nconsole.log('require-js', c.options.port, c instanceof Cluster);\n`,
};

const CHECKED = `import Cluster from 'cluster2';
const c = new Cluster({ port: 0 });
c.on('died', (pid, code, signal) => { const p: number = pid; const k: number | null = code; const s: NodeJS.Signals | null = signal; void p; void k; void s; });
c.on('reloaded', (pairs) => pairs.map(([o, n]) => o + n));
// @ts-expect-error pid is a number
c.on('died', (pid: string) => pid);
// @ts-expect-error no such event
c.on('dide', () => {});
// @ts-expect-error noWorkers is a number (or a decimal string)
new Cluster({ noWorkers: true });
// @ts-expect-error no such strategy
new Cluster({ strategy: 'fast' });
`;

const readme = [
  ...docBlocks('README.md', 'Usage', 'js')
    .slice(0, 1)
    .map((b) => ['js', b] as const),
  ...docBlocks('docs/api.md', 'TypeScript', 'ts').map((b) => ['ts', b] as const),
  ...docBlocks('docs/api.md', 'TypeScript', 'js').map((b) => ['js', b] as const),
];
const README_FILES = Object.fromEntries(readme.map(([lang, b], i) => [fileFor(b, lang, i), b]));

t.test("the docs' examples, the four ways to load it and checked listeners compile", async (t) => {
  t.ok(readme.length >= 4, "the Usage example and the TypeScript section's");
  const dir = project({ ...README_FILES, ...FORMS, 'checked.mts': CHECKED });
  for (const [module, resolution] of MODES) {
    const files = [...Object.keys(README_FILES), ...Object.keys(FORMS), 'checked.mts'];
    const r = await tsc(dir, [...common, '--module', module, '--moduleResolution', resolution, ...files]);
    t.equal(r.out, '', `module ${module}: no errors, and every @ts-expect-error in checked.mts is one`);
    t.equal(r.code, 0);
  }
  // Compiled (node16) and run: each form constructs a Cluster.
  const out = path.join(dir, 'out');
  const r = await tsc(dir, [
    ...common.filter((a) => a !== '--noEmit'),
    '--module',
    'node16',
    '--outDir',
    out,
    ...Object.keys(FORMS),
  ]);
  t.equal(r.out, '', 'emits');
  for (const f of Object.keys(FORMS)) {
    const js = path.join(out, f.replace(/\.mts$/, '.mjs').replace(/\.cts$/, '.cjs'));
    const got = await new Promise<string>((resolve) =>
      execFile(process.execPath, [js], { cwd: dir, env: { ...process.env, PORT: '' } }, (_e, so, se) =>
        resolve(so + se),
      ),
    );
    t.match(got, / 0 true/, `${f} constructs: ${got.trim()}`);
  }
});
