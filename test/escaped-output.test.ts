/* eslint-disable no-control-regex -- these tests look for raw terminal escapes in what cluster2 prints */
// Text that comes from the app or the filesystem reaches the operator with its control
// characters escaped (lib/shared/safe-text.ts): the master's own stderr lines (a crash-loop
// reason, an onDrain handler's failure, a warning quoting package.json), the single process's
// failure, and the monitor's /logs listing (file names).
import t from 'tap';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { EXIT_CRASH_LOOP } from '../dist/shared/exit-codes.js';
import { killLeftovers, startApp, tmpdir, until } from './helpers/cluster';
import { CLI, run, startCli } from './helpers/cli';
import { request } from './helpers/http';
import { PKG } from './helpers/package';
import { sharedDir } from './helpers/second-user';

/** An OSC title, a BEL, a colour, a C1 CSI (clear screen), a right-to-left override. */
const EVIL = '\u001b]0;PWNED\u0007\u001b[31mRED\u009b2J\u202eLTR';
/** What EVIL looks like escaped. */
const SHOWN = '\\u001b]0;PWNED\\u0007\\u001b[31mRED\\u009b2J\\u202eLTR';
/** Any control character but the newline between lines. */
const RAW = /[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/;

/** An app module in a fresh directory (with a package.json holding `pkg`); its path. */
function appModule(source: string, pkg: Record<string, unknown> = {}): string {
  const dir = tmpdir('c2evil-');
  fs.writeFileSync(path.join(dir, 'package.json'), JSON.stringify({ name: 'evil', version: '1.0.0', ...pkg }));
  const file = path.join(dir, 'app.js');
  fs.writeFileSync(file, `const EVIL = ${JSON.stringify(EVIL)};\n${source}\n`);
  return file;
}

t.test('a crash loop whose reason holds escapes: the master says so, escaped (human and JSON lines)', async (t) => {
  const app = appModule("throw new Error('boot failed ' + EVIL);");
  const pids = [path.join(tmpdir(), 'pids'), path.join(tmpdir(), 'pids')];
  t.teardown(() => Promise.all(pids.map((p) => killLeftovers(p))));
  const [human, json] = await Promise.all(
    ['human', 'json'].map((format, i) =>
      run(['start', app, '--workers', '1', '--port', '0', '--no-mon-port', '--pids', pids[i], '--log-format', format], {
        timeout: 90_000,
      }),
    ),
  );
  for (const [name, r] of [
    ['human', human],
    ['json', json],
  ] as const) {
    t.equal(r.code, EXIT_CRASH_LOOP, `${name}: exit 70 (${r.stderr.slice(-300)})`);
    t.notMatch(r.stderr, RAW, `${name}: no control character reached stderr`);
    const last = r.stderr.trim().split('\n').pop()!;
    t.match(
      last,
      /^cluster2: workers died 5 times in a row before listening \(last: boot failed /,
      `${name}: the reason`,
    );
    t.ok(last.includes(SHOWN), `${name}: the app's text shown escaped: ${last}`);
  }
  for (const line of json.stderr.split('\n').filter((l) => l.startsWith('{'))) JSON.parse(line);
  t.pass('every JSON line is still JSON');
});

t.test("an onDrain handler's failure and a package.json option's name: escaped in the master's lines", async (t) => {
  // The app's handler throws with EVIL in its message; package.json holds an option named with it.
  const app = appModule(
    `const Cluster = require(${JSON.stringify(PKG)});\n` +
      "new Cluster().onDrain(() => { throw new Error('drain failed ' + EVIL); });\n" +
      "module.exports = (req, res) => res.end('ok');",
    { cluster2: { [`bogus${EVIL}`]: 1 } },
  );
  const pids = path.join(tmpdir(), 'pids');
  const p = spawn(
    process.execPath,
    [CLI, 'start', app, '--workers', '1', '--port', '0', '--no-mon-port', '--pids', pids],
    { stdio: ['ignore', 'ignore', 'pipe'], detached: true },
  );
  t.teardown(() => killLeftovers(pids, [p.pid!], p.pid));
  let err = '';
  p.stderr!.on('data', (d) => {
    err += d;
  });
  await until(() => err.includes(' ready: '), 30_000, `the start (${err})`);
  const reload = await run(['reload', '--pids', pids], { timeout: 60_000 });
  t.equal(reload.code, 0, reload.stderr);
  await until(() => err.includes('an onDrain handler failed'), 30_000, 'the warning');
  const exited = new Promise((r) => p.once('exit', r));
  t.equal((await run(['shutdown', '--pids', pids])).code, 0);
  await exited;
  t.notMatch(err, RAW, 'no control character reached stderr');
  t.match(err, `warning: worker `, 'the warning line');
  t.ok(err.includes(`an onDrain handler failed: drain failed ${SHOWN}`), "the handler's message, escaped");
  t.ok(err.includes(`unknown option "bogus${SHOWN}" is ignored`), "the package.json option's name, escaped");
});

t.test('the same warning as a JSON line: valid JSON, no control character on the wire', async (t) => {
  const app = appModule(
    `const Cluster = require(${JSON.stringify(PKG)});\n` +
      "new Cluster().onDrain(() => { throw new Error('drain failed ' + EVIL); });\n" +
      "module.exports = (req, res) => res.end('ok');",
  );
  const s = await startCli(t, { app, args: ['--workers', '1'] });
  t.equal((await run(['reload', '--pids', s.pids], { timeout: 60_000 })).code, 0);
  const w = await s.waitFor('warning', (l) => /onDrain handler failed/.test(l.message), 30_000);
  // Escaped where it entered the master (its status and event log hold it so too).
  t.ok(w.message.endsWith(`drain failed ${SHOWN}`), `parsed: ${w.message}`);
  t.notMatch(s.stderr(), RAW, 'on the wire, no control character');
});

t.test('cluster: false, a listen callback that fails with escapes: one line, escaped', async (t) => {
  const app = appModule("module.exports = async () => { throw new Error('no server ' + EVIL); };");
  const pids = path.join(tmpdir(), 'pids');
  t.teardown(() => killLeftovers(pids));
  const r = await run(['start', app, '--no-cluster', '--port', '0', '--no-mon-port', '--pids', pids], {
    timeout: 60_000,
  });
  t.not(r.code, 0, r.stderr);
  t.notMatch(r.stderr, RAW, 'no control character reached stderr');
  t.ok(r.stderr.includes(`no server ${SHOWN}`), r.stderr);
});

t.test('the /logs listing shows a file name with escapes escaped (HTML and JSON)', async (t) => {
  const logs = sharedDir('c2evillogs-');
  t.teardown(() => fs.rmSync(logs, { recursive: true, force: true }));
  const name = `evil${EVIL}.log`;
  fs.writeFileSync(path.join(logs, name), 'text\n', { mode: 0o644 });
  const monPort = await new Promise<number>((resolve) => {
    const s = require('node:net')
      .createServer()
      .listen(0, '127.0.0.1', () => {
        const port = s.address().port;
        s.close(() => resolve(port));
      });
  });
  const app = await startApp(t, { opts: { monPort, logs, noWorkers: 1 } });
  const html = await request(monPort, '/logs');
  t.equal(html.status, 200);
  t.notMatch(html.body, RAW, 'HTML: no control character');
  t.ok(html.body.includes('evil\\u001b]0;PWNED\\u0007'), 'HTML: the name shown escaped');
  t.match(html.body, /href="\/logs\/evil%1B%5D0%3BPWNED%07/, 'the link is percent-encoded');
  const json = await request(monPort, '/logs?format=json');
  t.notMatch(json.body, RAW, 'JSON: no control character on the wire');
  t.same(
    JSON.parse(json.body).entries.map((e: { name: string }) => e.name),
    [name],
    'JSON: the name itself, once parsed',
  );
  const file = await request(monPort, `/logs/${encodeURIComponent(name)}`);
  t.equal(file.body, 'text\n', 'the file is served by its name');
  process.kill(app.pid, 'SIGTERM');
  t.equal((await app.exited).code, 0, 'the master exits cleanly');
});
