// /logs serves a file only when every local user could read it anyway (issue 25, item 3):
// the monitor listens on loopback, where every local user reaches it, and reads files as the
// master's user (root here). A real second local user asks for each file through the monitor
// and tries to read it directly: it gets through the monitor exactly what it could read itself.
import t from 'tap';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { startApp } from './helpers/cluster';
import { request } from './helpers/http';
import { asOther, OTHER_USER, sharedDir, skipReason } from './helpers/second-user';

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

/** GET http://127.0.0.1:port<p> as the other user: status and body. */
function getAsOther(port: number, p: string): { status: number; body: string } {
  const script =
    `require('node:http').get({ host: '127.0.0.1', port: ${port}, path: ${JSON.stringify(p)} }, (res) => {` +
    "let b = ''; res.setEncoding('utf8'); res.on('data', (d) => (b += d));" +
    "res.on('end', () => console.log(JSON.stringify({ status: res.statusCode, body: b }))); })" +
    ".on('error', (e) => { console.error(e.message); process.exit(2); });";
  const r = asOther([process.execPath, '-e', script]);
  if (r.status !== 0) throw new Error(`the request as ${OTHER_USER} failed: ${r.stderr}`);
  return JSON.parse(r.stdout);
}

/** Can the other user read this file itself? */
const readsItself = (file: string) => asOther(['cat', file]).status === 0;

t.test('the second user gets through /logs exactly what it could read itself', async (t) => {
  const why = skipReason();
  if (why) return void t.skip(why, () => {});
  const base = sharedDir('c2logs-', 0o755);
  t.teardown(() => fs.rmSync(base, { recursive: true, force: true }));
  const logs = path.join(base, 'logs');
  const make = (rel: string, mode: number, text = `${rel}\n`) => {
    const f = path.join(logs, rel);
    fs.mkdirSync(path.dirname(f), { recursive: true });
    fs.writeFileSync(f, text);
    fs.chmodSync(f, mode);
  };
  fs.mkdirSync(logs, { mode: 0o755 });
  fs.chmodSync(logs, 0o755);
  make('app.log', 0o644);
  make('secret.log', 0o600, 'TOKEN=s3cr3t\n'); // root's, as a service that logs secrets writes it
  make('group.log', 0o640, 'GROUP ONLY\n');
  make('private/inner.log', 0o644, 'BEHIND A CLOSED DIRECTORY\n');
  fs.chmodSync(path.join(logs, 'private'), 0o700);
  make('passable/open.log', 0o644); // a directory others may pass through, not list
  fs.chmodSync(path.join(logs, 'passable'), 0o711);
  fs.symlinkSync(path.join(logs, 'private', 'inner.log'), path.join(logs, 'link-to-private.log'));
  const monPort = await freePort();
  const app = await startApp(t, { opts: { monPort, logs, noWorkers: 1 } });

  const files = ['app.log', 'secret.log', 'group.log', 'private/inner.log', 'passable/open.log', 'link-to-private.log'];
  for (const rel of files) {
    const r = getAsOther(monPort, `/logs/${rel.split('/').map(encodeURIComponent).join('/')}`);
    const itself = readsItself(path.join(logs, rel));
    t.equal(
      r.status,
      itself ? 200 : 403,
      `${rel}: ${r.status}, and ${OTHER_USER} ${itself ? 'can' : 'cannot'} read it`,
    );
    if (itself) t.equal(r.body, fs.readFileSync(path.join(logs, rel), 'utf8'), `${rel}: served whole`);
    else {
      t.match(r.body, `logs/${rel} is not served: `, `${rel}: 403 says why`);
      t.match(r.body, /\/logs serves only what every local user could read anyway/);
      t.notMatch(r.body, /s3cr3t|GROUP ONLY|CLOSED DIRECTORY/, `${rel}: nothing of the file`);
    }
  }
  t.match(getAsOther(monPort, '/logs/secret.log').body, /not every local user may read it \(mode 0600\)/);
  t.match(getAsOther(monPort, '/logs/group.log').body, /\(mode 0640\)/);
  t.match(
    getAsOther(monPort, '/logs/private/inner.log').body,
    /the directory logs\/private \(mode 0700\) does not let every local user through/,
  );
  // Behind a closed directory, a name that is there and one that is not get the same answer.
  const there = getAsOther(monPort, '/logs/private/inner.log');
  const notThere = getAsOther(monPort, '/logs/private/nope.log');
  t.same(
    [notThere.status, notThere.body.replace('nope.log', 'inner.log')],
    [there.status, there.body],
    'no way to tell what a closed directory holds',
  );

  // Listings: a directory every user may list, with what is not served marked; one they may not list: 403.
  const root = getAsOther(monPort, '/logs?format=json');
  t.equal(root.status, 200);
  const entries = JSON.parse(root.body).entries as { name: string; public: boolean }[];
  t.same(
    Object.fromEntries(entries.map((e) => [e.name, e.public])),
    {
      'app.log': true,
      'group.log': false,
      'link-to-private.log': false, // its target is 0644, but behind a closed directory
      passable: false,
      private: false,
      'secret.log': false,
    },
    'each entry says whether it is served',
  );
  const html = getAsOther(monPort, '/logs');
  t.match(html.body, /secret\.log \(not served: not every local user may read it\)/);
  t.notMatch(html.body, /href="\/logs\/secret\.log"/, 'no link to what is not served');
  const passable = getAsOther(monPort, '/logs/passable/');
  t.equal(passable.status, 403, 'a directory others may pass through but not list: not listed');
  t.match(passable.body, /not every local user may list the directory logs\/passable \(mode 0711\)/);
  process.kill(app.pid, 'SIGTERM');
  t.equal((await app.exited).code, 0, 'the master exits cleanly');
});

t.test('a logs directory behind a directory only root may enter: nothing is served', async (t) => {
  const base = sharedDir('c2logs-', 0o700);
  t.teardown(() => fs.rmSync(base, { recursive: true, force: true }));
  const logs = path.join(base, 'logs');
  fs.mkdirSync(logs, { mode: 0o755 });
  fs.chmodSync(logs, 0o755);
  fs.writeFileSync(path.join(logs, 'app.log'), 'hidden\n', { mode: 0o644 });
  const monPort = await freePort();
  const app = await startApp(t, { opts: { monPort, logs, noWorkers: 1 } });
  for (const p of ['/logs', '/logs/app.log', '/logs/nope.log']) {
    const r = await request(monPort, p);
    t.equal(r.status, 403, `${p}: 403`);
    t.match(r.body, `the directory ${base} (mode 0700) does not let every local user through`);
    t.notMatch(r.body, /hidden/);
  }
  process.kill(app.pid, 'SIGTERM');
  t.equal((await app.exited).code, 0, 'the master exits cleanly');
});
