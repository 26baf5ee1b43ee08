// The package installed from its tarball into a fresh app, as users get it, with a PATH
// that holds no compiler, make or python and no npm_config_build_from_source: the
// prebuild is what runs. Without a prebuild the install still succeeds and the master
// says at start, in one line, that the fallback runs and why.
import t from 'tap';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { startApp, until, type App } from './helpers/cluster';
import { request } from './helpers/http';
import { REPO } from './helpers/package';
import {
  BUILD_TOOLS,
  HOST_PREBUILD,
  bareBin,
  exec,
  install,
  npmScript,
  pack,
  userEnv,
  withoutPrebuilds,
} from './helpers/tarball';

const linux = process.platform === 'linux';

/** Fresh connections until every worker of the app has answered. */
async function servedByAll(app: App): Promise<void> {
  const workers = app.workers();
  const seen = new Set<number>();
  await until(
    async () => {
      const bodies = await Promise.all(Array.from({ length: 8 }, () => request(app.port, '/')));
      for (const b of bodies) seen.add(Number(b.body.split(' ')[1]));
      return workers.every((w) => seen.has(w));
    },
    30_000,
    `answers from every worker (${workers.join(', ')})`,
  );
}

/** In the app directory: which implementation runs, why, and which .node file was loaded. */
async function report(app: string, bin: string, env: NodeJS.ProcessEnv = {}) {
  const r = await exec(
    process.execPath,
    [
      '-e',
      "const c = require('cluster2'); const n = require(require('node:path').join(require.resolve('cluster2'), '..', 'shared', 'native.js'));" +
        "console.log(JSON.stringify({ implementation: c.implementation, loadError: n.loadError && n.loadError.message, loaded: Object.keys(require.cache).filter((k) => k.endsWith('.node')) }))",
    ],
    { cwd: app, env: userEnv({ PATH: bin, ...env }) },
  );
  if (r.code !== 0) throw new Error(r.stderr);
  return JSON.parse(r.stdout) as { implementation: string; loadError: string | null; loaded: string[] };
}

let tarball: string;
let bin: string;
t.before(async () => {
  tarball = await pack(t);
  bin = bareBin(t);
});

t.test('the PATH of these installs has no build tools', async (t) => {
  for (const tool of BUILD_TOOLS) t.notOk(fs.existsSync(path.join(bin, tool)), `no ${tool}`);
  t.same(fs.readdirSync(bin).sort(), ['node', 'sh']);
});

t.test(
  'installed without a compiler: the prebuild runs',
  { skip: !fs.existsSync(HOST_PREBUILD) && 'no prebuild: run `npm run prebuild`' },
  async (t) => {
    const { app, pkg } = await install(t, tarball, bin);
    t.notOk(fs.existsSync(path.join(pkg, 'build')), 'nothing was compiled');

    const r = await report(app, bin);
    t.equal(r.implementation, 'native', "require('cluster2').implementation");
    t.same(r.loaded, [path.join(pkg, path.relative(REPO, HOST_PREBUILD))], 'the prebuild of this platform and libc');

    t.test('a reuseport cluster serves from both workers', { skip: !linux && 'Linux only' }, async (t) => {
      const a = await startApp(t, {
        opts: { strategy: 'reuseport', noWorkers: 2 },
        env: { ...userEnv({ PATH: bin }), CLUSTER2_TEST_PACKAGE: pkg },
      });
      t.equal(a.events.find((e) => e.ev === 'strategy')!.args[0], 'reuseport');
      await servedByAll(a);
      t.pass('both workers answered');
      t.equal(a.stderr(), '', 'nothing said about a fallback');
    });

    t.test('npx cluster2 --version', async (t) => {
      const r = await exec(process.execPath, [npmScript('npx-cli.js'), 'cluster2', '--version'], {
        cwd: app,
        env: userEnv({ PATH: bin, npm_config_yes: 'false' }), // never fetch another cluster2 from the registry
      });
      t.equal(r.code, 0, r.stderr);
      t.equal(r.stdout.trim(), JSON.parse(fs.readFileSync(path.join(pkg, 'package.json'), 'utf8')).version);
    });

    t.test('TypeScript finds the types of both exports conditions (import and require)', async (t) => {
      fs.writeFileSync(
        path.join(app, 'esm.mts'),
        [
          "import C, { Cluster, EXIT_PORT_BUSY, implementation } from 'cluster2';",
          'const c: InstanceType<typeof Cluster> = new C({ port: 0 });',
          "export const x: [typeof c, number, 'native' | 'js'] = [c, EXIT_PORT_BUSY, implementation];",
        ].join('\n'),
      );
      fs.writeFileSync(
        path.join(app, 'cjs.cts'),
        "import cluster2 = require('cluster2');\nexport const c = new cluster2.Cluster({ port: 0 });\n",
      );
      const tsc = path.join(REPO, 'node_modules', 'typescript', 'bin', 'tsc');
      const r = await exec(
        process.execPath,
        [
          tsc,
          '--noEmit',
          '--strict',
          '--module',
          'node16',
          '--moduleResolution',
          'node16',
          '--types',
          'node',
          '--typeRoots',
          path.join(REPO, 'node_modules', '@types'),
          'esm.mts',
          'cjs.cts',
        ],
        { cwd: app, env: userEnv({ PATH: bin }) },
      );
      t.equal(r.code, 0, r.stdout + r.stderr);
    });

    t.test('CLUSTER2_NATIVE=0: the fallback, silently (it was asked for)', async (t) => {
      const r = await report(app, bin, { CLUSTER2_NATIVE: '0' });
      t.same([r.implementation, r.loadError, r.loaded], ['js', null, []]);
      const a = await startApp(t, {
        opts: { noWorkers: 2 },
        env: { ...userEnv({ PATH: bin }), CLUSTER2_TEST_PACKAGE: pkg, CLUSTER2_NATIVE: '0' },
      });
      t.not(a.events.find((e) => e.ev === 'strategy')!.args[0], 'reuseport', 'not the master-held sockets');
      await servedByAll(a);
      t.notMatch(a.stderr(), /native addon is not in use/, 'no fallback note');
    });
  },
);

t.test(
  'no prebuild for this platform and no compiler: installs, and says at start why the fallback runs',
  async (t) => {
    const { app, pkg, ran } = await install(t, await withoutPrebuilds(t, tarball), bin);
    t.notOk(fs.existsSync(path.join(pkg, 'prebuilds')), 'no prebuilds in this package');
    t.match(
      ran.stdout + ran.stderr,
      /cluster2: native addon not built; the pure-JS fallback will be used/,
      'the install says so',
    );
    const r = await report(app, bin);
    t.equal(r.implementation, 'js');
    t.match(r.loadError, /No native build was found/);

    const a = await startApp(t, {
      opts: { noWorkers: 2 },
      env: { ...userEnv({ PATH: bin }), CLUSTER2_TEST_PACKAGE: pkg },
    });
    await servedByAll(a);
    const lines = a.stderr().trim().split('\n');
    t.equal(lines.length, 1, `one line at start: ${a.stderr()}`);
    t.match(
      lines[0],
      /^cluster2: the native addon is not in use \(No native build was found for platform=\S+ arch=\S+ .*libc=\S+.*\); the pure-JS fallback runs/,
    );
  },
);
