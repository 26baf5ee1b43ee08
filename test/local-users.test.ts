// Other local users are kept out by default (issue #17): no log files through
// the monitor unless `logs` is given, ECV changed only through the 0600
// control socket (`cluster2 ecv disable|enable`), bad control input refused.
import t from 'tap';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { EXIT_USAGE } from '../dist/shared/exit-codes.js';
import { tmpdir } from './helpers/cluster';
import { CLI_APP, run, startCli } from './helpers/cli';
import { freePort } from './helpers/native-util';
import { request } from './helpers/http';
import { asOther, OTHER_USER, sharedDir, skipReason } from './helpers/second-user';

/** GET a URL as the other user; its status code, or the error. */
function fetchAsOther(url: string, method = 'GET'): string {
  const r = asOther([
    process.execPath,
    '-e',
    `fetch(${JSON.stringify(url)}, { method: ${JSON.stringify(method)} }).then((r) => console.log(r.status), (e) => console.log(e.cause?.code ?? e.message))`,
  ]);
  return r.stdout.trim();
}

t.test('the monitor serves no /logs unless the logs option names a directory', async (t) => {
  const why = skipReason();
  const cwd = sharedDir('c2logs-');
  t.teardown(() => fs.rmSync(cwd, { recursive: true, force: true }));
  fs.mkdirSync(path.join(cwd, 'logs'));
  fs.writeFileSync(path.join(cwd, 'logs', 'app.log'), 'root only\n', { mode: 0o600 });
  const monPort = await freePort();
  const app = await startCli(t, {
    cwd,
    args: ['--mon-port', String(monPort)],
    pids: path.join(tmpdir(), 'pids'),
    defaults: false,
  });
  void app;
  const r = await request(monPort, '/logs/app.log');
  t.equal(r.status, 404, 'no /logs by default');
  t.match(r.body, 'the logs option is not set');
  t.equal((await request(monPort, '/status')).status, 200, '/status stays open on loopback (docs/security.md)');
  if (why) return void t.skip(why, () => {});
  t.equal(
    fetchAsOther(`http://127.0.0.1:${monPort}/logs/app.log`),
    '404',
    `${OTHER_USER} cannot read root's 0600 log through the monitor`,
  );
});

t.test('cluster2 ecv disable|enable through the control socket; another user cannot', async (t) => {
  const app = await startCli(t);
  const ecv = async () => (await request(app.port, '/ecv')).status;
  t.equal(await ecv(), 200);
  const off = await run(['ecv', 'disable', '--pids', app.pids]);
  t.equal(off.code, 0, off.stderr);
  t.match(off.stdout, `master ${app.pid}: ECV disabled`);
  t.equal(await ecv(), 400, 'every worker answers DISABLED');
  await app.waitFor('ecv', (l) => l.enabled === false);
  t.not(
    (await request(app.port, '/ecv/enable', { method: 'POST' })).status,
    204,
    'no HTTP control route without ecv.control: the app answers',
  );
  t.equal(await ecv(), 400, 'still disabled');
  const on = await run(['ecv', 'enable', '--pids', app.pids, '--json']);
  t.equal(on.code, 0, on.stderr);
  t.same(JSON.parse(on.stdout)[0].result.enabled, true);
  t.equal(await ecv(), 200);

  const why = skipReason();
  if (why) return void t.skip(why, () => {});
  const other = asOther([
    process.execPath,
    path.join(__dirname, '..', 'dist', 'cli', 'main.js'),
    'ecv',
    'disable',
    '--pids',
    app.pids,
  ]);
  t.not(other.status, 0, `${OTHER_USER}: refused (${other.stderr.trim()})`);
  t.equal(fs.statSync(app.pids).mode & 0o777, 0o700, 'the pids directory is 0700');
  t.equal(await ecv(), 200, 'ECV still enabled');
});

t.test('bad scale and ecv input are usage errors (64)', async (t) => {
  const cases = [
    ['scale', '0'],
    ['scale', '99999'],
    ['scale', '+5000'],
    ['ecv'],
    ['ecv', 'off'],
    ['start', CLI_APP, '--ecv-allow', 'not-an-ip'],
    ['start', CLI_APP, '--ecv-monitor', '/ecv'],
  ];
  const results = await Promise.all(cases.map((args) => run([...args, '--pids', path.join(tmpdir(), 'pids')])));
  cases.forEach((args, i) =>
    t.equal(results[i].code, EXIT_USAGE, `cluster2 ${args.join(' ')}: ${results[i].stderr.split('\n')[0]}`),
  );
  const { Cluster } = await import('../dist/index.js');
  t.throws(() => new Cluster({ ecv: { monitor: '/ecv' } }), {
    name: 'RangeError',
    message: /"ecv.monitor" is "\/ecv"; it must be a path other than ecv.path/,
  });
  t.throws(() => new Cluster({ ecv: { allow: ['10.0.0.1', 'nope'] } }), {
    name: 'TypeError',
    message: /"nope" is not one/,
  });
  t.doesNotThrow(() => new Cluster({ ecv: { allow: ['10.0.0.1', '::ffff:10.0.0.2', 'fe80::1'] } }));
});
