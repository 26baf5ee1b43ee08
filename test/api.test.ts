import t, { type Test } from 'tap';
import { spawnSync } from 'node:child_process';
import * as https from 'node:https';
import * as net from 'node:net';
import * as path from 'node:path';
import { startApp } from './helpers/cluster';
import { request } from './helpers/http';
import { PKG, PKG_CWD } from './helpers/package';
import { RUNTIME_EXEC, onBun } from './helpers/runtime';

const root = PKG;

t.test('require() returns the constructor, with named exports', async (t) => {
  const Cluster = require(PKG);
  t.type(Cluster, 'function');
  t.equal(Cluster.Cluster, Cluster);
  t.equal(Cluster.EXIT_PORT_BUSY, 69);
  t.equal(Cluster.EXIT_CRASH_LOOP, 70);
  const c = new Cluster({ port: 0 });
  t.type(c.on, 'function', 'an EventEmitter');
  t.equal(c.role, 'client', 'not started: a control client');
});

t.test('import { Cluster } from "cluster2" works from ESM', async (t) => {
  const r = spawnSync(
    RUNTIME_EXEC,
    [
      '--input-type=module',
      '-e',
      "import { Cluster, EXIT_PORT_BUSY } from 'cluster2'; import C from 'cluster2'; console.log(typeof Cluster, C === Cluster, EXIT_PORT_BUSY)",
    ],
    { cwd: PKG_CWD, encoding: 'utf8' },
  );
  t.equal(r.stdout.trim(), 'function true 69', r.stderr);
});

t.test('type declarations are shipped', async (t) => {
  const pkg = require(path.join(PKG, 'package.json'));
  // One declaration file per condition (test/types.test.ts compiles against them).
  t.equal(pkg.types, './dist/cjs.d.ts');
  t.equal(pkg.exports['.'].import.types, './dist/esm.d.mts');
  t.equal(pkg.exports['.'].require.types, './dist/cjs.d.ts');
  for (const f of ['cjs.d.ts', 'esm.d.mts', 'index.d.ts'])
    t.ok(require('node:fs').existsSync(path.join(root, 'dist', f)), f);
});

function serves(t: Test, kind: string) {
  t.test(`listen with ${kind}`, async (t) => {
    const app = await startApp(t, { kind });
    const workers = app.workers();
    t.equal(workers.length, 2, 'two workers');
    const r = await request(app.port, '/');
    t.equal(r.status, 200);
    t.match(r.body, /^hello \d+$/);
    t.ok(workers.includes(Number(r.body.split(' ')[1])), 'answered by a worker');
  });
}

// timer: `(cb) => setTimeout(() => cb(server), 300)` returns a Timeout, which means "wait for cb" (issue 25).
// wrapped: a server recognised by what it can do, not by instanceof net.Server (issue 28).
for (const kind of ['http', 'handler', 'async', 'timer']) serves(t, kind);
if (!onBun) serves(t, 'wrapped');
else
  t.test("listen with a server that wraps Bun's http.Server: a clear failure, not a random port", async (t) => {
    // Bun's http.Server cannot take the worker's socket; through a wrapper the acceptor cannot step in.
    const app = await startApp(t, { kind: 'wrapped', opts: { strategy: 'reuseport' }, listening: 0 });
    t.equal((await app.exited).code, 70, 'crash loop: exit 70');
    t.match(app.stderr(), /the app's server listens on port \d+, not on the socket cluster2 gave it \(port \d+\)/);
  });

t.test('listen with a net.Server', async (t) => {
  const app = await startApp(t, { kind: 'net' });
  const line = await new Promise<string>((resolve, reject) => {
    const s = net.connect(app.port, '127.0.0.1');
    s.setEncoding('utf8');
    s.once('data', (d: string) => {
      resolve(d);
      s.destroy();
    });
    s.on('error', reject);
  });
  t.match(line, /^hello \d+\n$/);
});

t.test('listen with an https.Server', async (t) => {
  const app = await startApp(t, { kind: 'https' });
  const body = await new Promise<string>((resolve, reject) => {
    https
      .get({ host: '127.0.0.1', port: app.port, path: '/', rejectUnauthorized: false }, (res) => {
        let b = '';
        res.on('data', (d) => {
          b += d;
        });
        res.on('end', () => resolve(b));
      })
      .on('error', reject);
  });
  t.match(body, /^hello \d+$/);
});

t.test('a listen callback that gives no server fails the worker with a clear message', async (t) => {
  const app = await startApp(t, { kind: 'bogus', env: { C2_KIND: 'bogus' }, fixture: 'bad-server.js', listening: 0 });
  const { code } = await app.exited;
  t.equal(code, 70, 'crash loop: exit 70');
  t.match(
    app.stderr(),
    /the listen callback must give a net\.Server, http\.Server, https\.Server \(or any server with listen\(\), close\(\), address\(\) and a .connection. event\) or a request handler function; got number/,
  );
});
