// The runtimes cluster2 runs on (lib/shared/runtime-support.ts, lib/shared/js-runtime.ts):
// Node and Bun run it, Deno is refused at start (exit 78), and the port probe never calls a
// free port busy on any of them. Bun and Deno are found through CLUSTER2_TEST_BUN and
// CLUSTER2_TEST_DENO, or PATH, else fetched from npm (test/helpers/fetched.ts); without one, its tests are
// skipped with the reason.
import t from 'tap';
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { alive, killLeftovers, startApp, tmpdir, until } from './helpers/cluster';
import { CLI } from './helpers/cli';
import { request } from './helpers/http';
import { freePort, runProbes, tcpStates, type RuntimeCommand } from './helpers/native-util';
import { PKG, pkgRequire } from './helpers/package';
import { findRuntime } from './helpers/runtime';

const { runtimeOf, runtimeLabel } = pkgRequire<typeof import('../dist/shared/js-runtime.js')>('shared/js-runtime.js');
const support = pkgRequire<typeof import('../dist/service/runtime-support.js')>('service/runtime-support.js');

const BUN = findRuntime('bun');
const DENO = findRuntime('deno');
const noBun = !BUN && 'no bun (CLUSTER2_TEST_BUN or PATH)';
const noDeno = !DENO && 'no deno (CLUSTER2_TEST_DENO or PATH)';

const versions = (extra: Record<string, string>) => ({ ...process.versions, ...extra });

t.test('runtimeOf tells Node, Bun and Deno apart (both also report a Node version)', async (t) => {
  t.same(runtimeOf(process.versions), { name: 'node', version: process.versions.node });
  t.same(runtimeOf(versions({ node: '26.3.0', bun: '1.4.5' })), { name: 'bun', version: '1.4.5' });
  t.same(runtimeOf(versions({ node: '26.3.0', deno: '2.9.6' })), { name: 'deno', version: '2.9.6' });
  t.equal(runtimeLabel({ name: 'bun', version: '1.4.5' }), 'Bun 1.4.5');
});

t.test('what runs where: Node and Bun >= 1.4 run, Deno and an older Bun are refused with exit 78', async (t) => {
  t.equal(support.runtimeProblem({ name: 'node', version: '20.0.0' }), null);
  t.equal(support.runtimeNote({ name: 'node', version: '20.0.0' }), null, 'nothing to say on Node');
  t.equal(support.runtimeProblem({ name: 'bun', version: '1.4.0' }), null);
  t.equal(support.runtimeProblem({ name: 'bun', version: '1.10.2' }), null);
  t.match(
    support.runtimeNote({ name: 'bun', version: '1.4.5' }),
    /^cluster2: on Bun 1\.4\.5, an http or https server accepts through a net\.Server that hands it each connection, because Bun's HTTP server cannot listen on a socket it is given/,
  );
  t.match(
    support.runtimeProblem({ name: 'bun', version: '1.3.14' }),
    /^cluster2: Bun 1\.3\.14 is too old: cluster2 needs Bun >= 1\.4, whose net\.Server can listen on a socket it is given/,
  );
  const deno = support.runtimeProblem({ name: 'deno', version: '2.9.6' })!;
  t.match(deno, /^cluster2: Deno 2\.9\.6 is not supported: .*loses requests while workers are replaced or removed/);
  t.match(deno, /run it with Node >= 20 or Bun >= 1\.4$/, 'says what to run instead');
  t.notMatch(deno, /\n/, 'one line');
  t.throws(() => support.checkRuntime({ name: 'deno', version: '2.9.6' }), { exitCode: 78, message: deno });
  t.equal(support.checkRuntime({ name: 'node', version: '22.0.0' }), null);
});

/** Each runtime found, as the command that runs a script with it. */
function runtimes(): Array<[string, RuntimeCommand]> {
  const out: Array<[string, RuntimeCommand]> = [['node', { exec: process.execPath, args: [] }]];
  if (BUN) out.push(['bun', { exec: BUN, args: [] }]);
  if (DENO) out.push(['deno', { exec: DENO, args: ['run', '-A'] }]);
  return out;
}

t.test('the port probe never reports a free port as busy, on any runtime, addon or not', async (t) => {
  if (!BUN) t.comment(`bun not probed: ${noBun}`);
  if (!DENO) t.comment(`deno not probed: ${noDeno}`);
  // A port in TIME_WAIT (the server closed first), which a bind with SO_REUSEADDR may take.
  const server = net.createServer((socket) => socket.end());
  await new Promise<void>((resolve) => server.listen({ host: '127.0.0.1', port: 0 }, resolve));
  const waiting = (server.address() as net.AddressInfo).port;
  await new Promise<void>((resolve, reject) => {
    const client = net.connect({ host: '127.0.0.1', port: waiting });
    client.on('error', reject);
    client.on('close', () => resolve());
    client.resume();
  });
  await new Promise<void>((resolve) => server.close(() => resolve()));
  await until(() => tcpStates(waiting).includes('06'), 20_000, `port ${waiting} in TIME_WAIT`);
  // And a port something listens on, which must be busy.
  const holder = net.createServer();
  t.teardown(() => holder.close());
  await new Promise<void>((resolve) => holder.listen({ host: '127.0.0.1', port: 0 }, resolve));
  const held = (holder.address() as net.AddressInfo).port;
  for (const [name, runtime] of runtimes()) {
    for (const flag of ['1', '0'] as const) {
      const free = await freePort();
      const run = await runProbes(
        flag,
        [
          ['127.0.0.1', free],
          ['', free],
          [undefined, free],
          ['127.0.0.1', waiting],
          ['', waiting],
          ['127.0.0.1', held],
        ],
        { runtime },
      );
      const what = `${name}, CLUSTER2_NATIVE=${flag} (${run.implementation})`;
      t.same(run.results.slice(0, 3), [null, null, null], `${what}: a free port is free (127.0.0.1, all interfaces)`);
      t.same(run.results.slice(3, 5), [null, null], `${what}: a port in TIME_WAIT is free`);
      t.equal(run.results[5]?.code, 'EADDRINUSE', `${what}: a held port is busy`);
    }
  }
});

/** A directory with an app whose cluster2 is the package under test, as a Deno user has it ("type": "commonjs"). */
function denoApp(port: number): { dir: string; pids: string } {
  const dir = tmpdir('c2-deno-');
  const pids = path.join(dir, 'pids');
  fs.writeFileSync(path.join(dir, 'package.json'), JSON.stringify({ type: 'commonjs' }));
  fs.writeFileSync(
    path.join(dir, 'app.js'),
    `const Cluster = require(${JSON.stringify(PKG)});
const http = require('node:http');
const c = new Cluster({ port: ${port}, monPort: false, noWorkers: 2, pids: ${JSON.stringify(pids)} });
c.listen((cb) => cb(http.createServer((req, res) => res.end('hello'))));
`,
  );
  return { dir, pids };
}

function ran(p: ChildProcess): Promise<{ code: number | null; stderr: string }> {
  let stderr = '';
  p.stderr!.on('data', (d) => (stderr += d));
  return new Promise((resolve) => p.on('close', (code) => resolve({ code, stderr })));
}

t.test('Deno: refused at start with exit 78 and one line, before anything is created', { skip: noDeno }, async (t) => {
  const port = await freePort();
  const { dir, pids } = denoApp(port);
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  for (const [how, args] of [
    ['the API', ['run', '-A', path.join(dir, 'app.js')]],
    ['cluster2 start', ['run', '-A', CLI, 'start', path.join(dir, 'app.js'), '--pids', pids]],
  ] as const) {
    const p = spawn(DENO!, args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
    t.teardown(() => killLeftovers(pids, [p.pid!]));
    const r = await ran(p);
    t.equal(r.code, 78, `${how}: exit 78`);
    const lines = r.stderr.trim().split('\n');
    t.equal(lines.length, 1, `${how}: one line: ${r.stderr}`);
    t.match(lines[0], /^cluster2: Deno [\d.]+ is not supported: .* run it with Node >= 20 or Bun >= 1\.4$/);
    t.notOk(fs.existsSync(pids), `${how}: no pids directory`);
    const probe = await runProbes('1', [['127.0.0.1', port]]);
    t.same(probe.results, [null], `${how}: the port was never taken`);
  }
});

t.test(
  'Bun: the master says once what it does differently, and serves from every worker',
  { skip: noBun },
  async (t) => {
    for (const native of ['1', '0']) {
      const app = await startApp(t, { exec: BUN, env: { CLUSTER2_NATIVE: native } });
      const note = app.stderr().match(/^cluster2: on Bun [\d.]+, .*$/gm) ?? [];
      t.equal(note.length, 1, `CLUSTER2_NATIVE=${native}: one line at start: ${note[0]}`);
      const seen = new Set<string>();
      await until(
        async () => {
          seen.add((await request(app.port, '/')).body.split(' ')[1]);
          return app.workers().every((w) => seen.has(String(w)));
        },
        10_000,
        'answers from both workers',
      );
      t.pass(`CLUSTER2_NATIVE=${native}: served by ${[...seen].join(', ')}`);
    }
  },
);

t.test(
  'Bun: the app runs as the main module; one that throws at load fails at once (70)',
  { skip: noBun },
  async (t) => {
    const dir = tmpdir('c2-bun-main-');
    t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
    const file = path.join(dir, 'main.js');
    // Listens only when it is the main module, as scripts written for `node app.js` often do.
    fs.writeFileSync(
      file,
      `const Cluster = require(${JSON.stringify(PKG)});
const http = require('node:http');
const c = new Cluster(JSON.parse(process.env.C2_OPTS));
if (!c.isWorker) c.on('strategy', (...args) => console.log(JSON.stringify({ ev: 'strategy', args })));
c.on('listening', (...args) => console.log(JSON.stringify({ ev: 'listening', args })));
if (require.main === module) c.listen((cb) => cb(http.createServer((req, res) => res.end('main ' + process.pid))));
`,
    );
    const app = await startApp(t, { exec: BUN, fixture: path.relative(path.join(__dirname, 'fixtures'), file) });
    t.match((await request(app.port, '/')).body, /^main \d+$/, 'require.main === module in the workers');

    // Module.runMain under Bun swallows what the app throws: it must still fail the worker.
    const broken = await startApp(t, {
      exec: BUN,
      env: { C2_BOOT_THROW: '1' },
      opts: { listenTimeout: 120_000 },
      listening: 0,
    });
    const { code } = await broken.exited;
    t.equal(code, 70, 'workers that throw at load: exit 70, long before listenTimeout');
    t.match(broken.stderr(), /boom at start/, 'with what the app threw');
  },
);

t.test('Bun: `bunx --bun cluster2 start` serves from every worker and shuts down', { skip: noBun }, async (t) => {
  const dir = tmpdir('c2-bunx-');
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  // The app's node_modules, as an install makes it: the package and its bin link.
  fs.writeFileSync(path.join(dir, 'package.json'), JSON.stringify({ name: 'app', private: true }));
  fs.mkdirSync(path.join(dir, 'node_modules', '.bin'), { recursive: true });
  fs.symlinkSync(PKG, path.join(dir, 'node_modules', 'cluster2'));
  fs.symlinkSync(
    path.join('..', 'cluster2', 'dist', 'cli', 'main.js'),
    path.join(dir, 'node_modules', '.bin', 'cluster2'),
  );
  // npm makes a bin executable when it installs the package; the compiled one here may not be yet.
  const cli = path.join(PKG, 'dist', 'cli', 'main.js');
  fs.chmodSync(cli, fs.statSync(cli).mode | 0o111);
  fs.copyFileSync(path.join(__dirname, 'fixtures', 'cli-app.js'), path.join(dir, 'app.js'));
  const bunx = path.join(path.dirname(BUN!), 'bunx');
  const [exec, pre] = fs.existsSync(bunx) ? [bunx, []] : [BUN!, ['x']];
  const pids = path.join(dir, 'pids');
  const port = await freePort();
  const p = spawn(
    exec,
    [...pre, '--bun', 'cluster2', 'start', 'app.js', '--port', String(port), '--workers', '2', '--no-mon-port'],
    { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'], detached: true },
  );
  t.teardown(() => killLeftovers(pids, [p.pid!], p.pid));
  const done = ran(p);
  let err = '';
  p.stderr!.on('data', (d) => (err += d));
  await until(() => /ready: 2 worker\(s\) listening/.test(err), 20_000, `ready (stderr: ${err})`);
  t.match(err, /^cluster2: on Bun [\d.]+, /m, 'the master runs on Bun');
  const workers = [...err.matchAll(/worker (\d+) listening/g)].map((m) => m[1]);
  const seen = new Set<string>();
  await until(
    async () => {
      seen.add((await request(port, '/')).body.split(' ')[1]);
      return workers.every((w) => seen.has(w));
    },
    10_000,
    'answers from both workers',
  );
  t.pass(`served by ${[...seen].join(', ')}`);
  process.kill(p.pid!, 'SIGTERM');
  t.equal((await done).code, 0, 'SIGTERM: exit 0');
  await until(() => workers.every((w) => !alive(Number(w))), 10_000, 'the workers to exit');
});
