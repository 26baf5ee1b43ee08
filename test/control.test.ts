// The master's control channel: its socket, who may use it, its protocol, and
// `new Cluster({ pids })` in another process using it (reload, status, resize).
import t from 'tap';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { Cluster } from '../dist/index.js';
import { controlRequest } from '../dist/client/control.js';
import { controlSocketFile } from '../dist/shared/protocol.js';
import { tmpdir } from './helpers/cluster';
import { run, startCli, statusOf } from './helpers/cli';
import { request } from './helpers/http';
import { asAnotherUser } from './helpers/native-util';

/** One raw line to the socket, the raw answer back. */
function rawAsk(file: string, line: string): Promise<string> {
  return new Promise((resolve, reject) => {
    let out = '';
    const s = net.connect(file, () => s.write(line));
    s.setEncoding('utf8');
    s.on('data', (d) => {
      out += d;
    });
    s.on('end', () => resolve(out));
    s.on('error', reject);
  });
}

t.test('the socket: <pids>/master.<pid>.sock, mode 0600, removed when the master exits', async (t) => {
  const app = await startCli(t);
  const file = controlSocketFile(app.pids, app.pid);
  const st = fs.statSync(file);
  t.ok(st.isSocket(), 'a Unix socket in the pids directory');
  t.equal(st.mode & 0o777, 0o600, 'only the owner may connect');
  t.equal((await run(['stop', '--pids', app.pids])).code, 0);
  t.notOk(fs.existsSync(file), 'removed at exit');
});

t.test(
  'another user cannot use it',
  { skip: process.getuid?.() !== 0 && 'needs root to run a client as another user' },
  async (t) => {
    const app = await startCli(t);
    // Let the other user reach the directory, so that only the socket's own mode stands in the way.
    fs.chmodSync(path.dirname(app.pids), 0o755);
    fs.chmodSync(app.pids, 0o755);
    const file = controlSocketFile(app.pids, app.pid);
    const client = spawn(
      process.execPath,
      [
        '-e',
        `
    const s = require('net').connect(${JSON.stringify(file)});
    s.on('connect', () => { s.write('{"op":"stop"}\\n'); console.log('connected'); });
    s.on('error', (e) => console.log(e.code));
  `,
      ],
      { uid: 65534, gid: 65534, stdio: ['ignore', 'pipe', 'inherit'], env: asAnotherUser() },
    );
    let out = '';
    client.stdout!.on('data', (d) => {
      out += d;
    });
    await new Promise((r) => client.on('exit', r));
    t.equal(out.trim(), 'EACCES');
    t.equal((await statusOf(app.pids))[0].state, 'running', 'the master did not stop');
  },
);

t.test('a pids path longer than a Unix socket path allows still works', async (t) => {
  let dir = tmpdir();
  while (dir.length < 130) dir = path.join(dir, 'a-rather-long-directory-name');
  const pids = path.join(dir, 'pids');
  const app = await startCli(t, { pids });
  t.ok(controlSocketFile(pids, app.pid).length > 108);
  t.ok(fs.statSync(controlSocketFile(pids, app.pid)).isSocket());
  const [st] = await statusOf(pids);
  t.equal(st.pid, app.pid);
  t.equal((await run(['stop', '--pids', pids])).code, 0);
  t.notOk(fs.existsSync(controlSocketFile(pids, app.pid)), 'removed at exit');
});

t.test(
  'new Cluster({ pids }) from another process: status, resize, reload (also a failed one), shutdown',
  async (t) => {
    const fail = path.join(tmpdir(), 'broken');
    const app = await startCli(t, { env: { C2_CLI_FAIL_FILE: fail } });
    const client = new Cluster({ pids: app.pids });
    t.equal(client.role, 'client');

    const st = await client.status();
    t.equal(st!.pid, app.pid);
    t.equal(st!.workers.length, 2);

    await client.resize(3);
    t.equal(
      (await client.status())!.workers.filter((w) => w.state === 'listening').length,
      3,
      'resize(3) resolved once 3 listen',
    );
    t.throws(() => client.resize(0), RangeError);

    const serving = async () =>
      (await client.status())!.workers
        .filter((w) => w.state === 'listening')
        .map((w) => w.pid)
        .sort();
    const before = await serving();
    await client.reload();
    const after = await serving();
    t.equal(after.length, 3);
    t.notOk(
      after.some((p) => before.includes(p)),
      'reload() resolved once every worker was replaced (the old ones drain)',
    );

    fs.writeFileSync(fail, '');
    await t.rejects(client.reload(), /the new code is broken/, "a failed reload rejects with the master's error");
    t.same(await serving(), after, 'the old workers keep serving');
    t.equal((await request(app.port, '/')).status, 200);

    await client.shutdown();
    t.same(await app.exited, { code: 0, signal: null });
    await t.rejects(client.status(), /no running master found/);
  },
);

t.test('bad requests get an error answer and change nothing', async (t) => {
  const app = await startCli(t, { args: ['--workers', '1'] });
  const file = controlSocketFile(app.pids, app.pid);
  const answer = async (line: string) => JSON.parse(await rawAsk(file, line));
  t.match(await answer('not json\n'), { ok: false, error: /not JSON/ });
  t.match(await answer('{"op":"rm -rf"}\n'), {
    ok: false,
    error: /unknown control request "rm -rf"; known: status, reload, scale, shutdown, stop/,
  });
  t.match(await answer('{"op":"scale"}\n'), { ok: false, error: /scale needs a whole number n/ });
  t.match(await answer('{"op":"scale","n":0}\n'), { ok: false, error: /from 1 to 1024/ });
  t.match(await answer(`${'x'.repeat(10_000)}`), { ok: false, error: /longer than 4096 bytes/ });
  t.match(await answer('{"op":"status"}\n'), { ok: true, result: { pid: app.pid, state: 'running' } });
  t.equal((await statusOf(app.pids))[0].workers.length, 1);
});

t.test('several masters in one pids directory: each answers; stop ends them all', async (t) => {
  const pids = path.join(tmpdir(), 'pids');
  const a = await startCli(t, { pids, args: ['--workers', '1'] });
  const b = await startCli(t, { pids, args: ['--workers', '1'] });
  const answers = await controlRequest(pids, { op: 'status' }, 5000);
  t.same(answers.map((x) => x.pid).sort(), [a.pid, b.pid].sort());
  const r = await run(['stop', '--pids', pids]);
  t.equal(r.code, 0, r.stderr);
  t.same(await a.exited, { code: 0, signal: null });
  t.same(await b.exited, { code: 0, signal: null });
});
