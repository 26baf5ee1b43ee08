// The cluster2 command, run as a subprocess (node dist/cli/main.js, or bun dist/cli/main.js with
// CLUSTER2_TEST_RUNTIME=bun) as a user would.
import t from 'tap';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { HELP, OPTION_FLAGS, parseArgs } from '../dist/cli/args.js';
import { EXIT_CONFIG, EXIT_CRASH_LOOP, EXIT_NOINPUT, EXIT_PORT_BUSY, EXIT_USAGE } from '../dist/shared/exit-codes.js';
import { OPTION_NAMES, resolveOptions } from '../dist/shared/options.js';
import { alive, tmpdir, until } from './helpers/cluster';
import { CLI, CLI_APP, killLeftovers, run, startCli, statusOf } from './helpers/cli';
import { request, startLoad } from './helpers/http';
import { freePort } from './helpers/native-util';
import { npxApp } from './helpers/npx-app';
import { RUNTIME_EXEC } from './helpers/runtime';

const pkgVersion = JSON.parse(fs.readFileSync(path.join(__dirname, '..', 'package.json'), 'utf8')).version;

t.test('every option of the API has a flag and help text', async (t) => {
  for (const name of OPTION_NAMES) {
    t.ok(
      OPTION_FLAGS.some((f) => f.option === name),
      `${name} has a flag`,
    );
    t.ok(HELP[name], `${name} has help text`);
  }
  const r = await run(['--help']);
  t.equal(r.code, 0);
  for (const f of OPTION_FLAGS) t.match(r.stdout, `--${f.flag}`, `--help lists --${f.flag}`);
});

t.test('flags are read with the option checks', async (t) => {
  const p = (s: string) => parseArgs(s.split(' '));
  t.same(p('start app.js --workers 3 --port=0 --mon-port false --max-memory 512M --pids 123').options, {
    noWorkers: 3,
    port: 0,
    monPort: false,
    maxMemory: '512M',
    pids: '123',
  });
  t.same(p('start app.js --no-mon-port --no-cluster --strategy round-robin').options, {
    monPort: false,
    cluster: false,
    strategy: 'round-robin',
  });
  t.same(p('start app.js --ecv-path /health --ecv-control --ecv-allow 10.0.0.1,10.0.0.2').options.ecv, {
    path: '/health',
    control: true,
    allow: ['10.0.0.1', '10.0.0.2'],
  });
  t.same(p('start app.js --no-ecv').options.ecv, false);
  t.equal(p('start app.js --timeout 5000').options.timeout, 5000, 'for start, --timeout is the idle timeout option');
  t.equal(p('reload --timeout 2.5').timeout, 2500, 'for the others, seconds to wait');
  t.same(p('scale -1').scale, { delta: -1 });
  t.same(p('scale +2').scale, { delta: 2 });
  t.same(p('scale 4').scale, { n: 4 });
  t.same(parseArgs(['start', 'app.js', '--', '--app-flag', 'x']).appArgs, ['--app-flag', 'x']);
  t.equal(p('start app.js --reload-concurrency 3').options.reloadConcurrency, 3);
  t.throws(() => p('start app.js --reload-concurrency 0'), /"reloadConcurrency" is 0.*--reload-concurrency/);
  t.throws(() => p('start app.js --workers 0'), { name: 'UsageError' });
  t.throws(() => p('start app.js --port 3000 extra'), { name: 'UsageError' });
  t.throws(() => p('start app.js --no-port'), { name: 'UsageError' });
  t.throws(() => p('status --workers 2'), { name: 'UsageError' });
  t.throws(() => p('scale two'), { name: 'UsageError' });
  t.throws(() => p('start app.js --ecv-path /x --no-ecv'), { name: 'UsageError' });
});

t.test("--request-histogram: alone, prom-client's buckets; with bounds, as docs/api.md writes them too", async (t) => {
  const p = (...a: string[]) => parseArgs(['start', ...a]);
  t.same(p('app.js', '--request-histogram').options, { requestHistogram: true }, 'last, alone');
  t.same(p('--request-histogram', 'app.js').options, { requestHistogram: true }, 'before APP, alone');
  t.equal(p('app.js', '--request-histogram', '--workers', '2').options.requestHistogram, true, 'before a flag');
  t.equal(p('app.js', '--request-histogram', '0.01,0.1,1').options.requestHistogram, '0.01,0.1,1');
  t.equal(p('app.js', '--request-histogram', '[0.01,0.1,1]').options.requestHistogram, '[0.01,0.1,1]');
  t.equal(p('app.js', '--request-histogram=[0.01, 0.1, 1]').options.requestHistogram, '[0.01, 0.1, 1]');
  t.equal(p('app.js', '--no-request-histogram').options.requestHistogram, false);
  t.same(resolveOptions({ requestHistogram: '[0.01,0.1,1]' as never }).requestHistogram, [0.01, 0.1, 1]);
  t.same(resolveOptions({ requestHistogram: ' [ 0.01 , 0.1 , 1 ] ' as never }).requestHistogram, [0.01, 0.1, 1]);
  t.throws(
    () => resolveOptions({ requestHistogram: '[0.01,,1]' as never }),
    /option "requestHistogram" is "\[0\.01,,1\]"; it must be true, false, or an array of increasing bucket bounds/,
    'a bad list is shown as given',
  );
  const help = await run(['--help']);
  t.match(help.stdout, /--request-histogram \[BUCKETS\]/, '--help shows the value as optional');

  // Started: the histogram is in /metrics, with prom-client's buckets or the ones given.
  for (const [args, le] of [
    [['--request-histogram'], ['0.005', '10']],
    [
      ['--request-histogram', '[0.01,0.1,1]'],
      ['0.01', '1'],
    ],
  ] as const) {
    const metrics = await freePort();
    const s = await startCli(t, { args: ['--workers', '1', '--metrics', `127.0.0.1:${metrics}`, ...args] });
    await request(s.port, '/');
    const body = await until(
      async () => {
        const b = (await request(metrics, '/metrics')).body;
        return b.includes('cluster2_http_request_duration_seconds_count 1') && b;
      },
      20_000,
      'the request in the histogram',
    );
    for (const bound of le)
      t.match(body, `cluster2_http_request_duration_seconds_bucket{le="${bound}"}`, args.join(' '));
    process.kill(s.pid, 'SIGTERM');
    await s.exited;
  }
});

t.test('--help lists every exit code of start', async (t) => {
  const r = await run(['--help']);
  for (const code of [0, 1, 3, 64, 66, 68, 69, 70, 73, 77, 78]) t.match(r.stdout, new RegExp(`\\b${code} `), `${code}`);
});

t.test('usage errors exit 64 with the usage; --help and --version exit 0', async (t) => {
  const cases = [
    [],
    ['bogus'],
    ['start'],
    ['start', CLI_APP, '--bogus'],
    ['status', '--port', '3000'],
    ['start', CLI_APP, '--port', 'abc'],
    ['scale'],
    ['reload', 'now'],
    ['--pids', 'x', 'status'],
    ['status', '-x'],
  ];
  const results = await Promise.all(cases.map((args) => run(args)));
  cases.forEach((args, i) => {
    t.equal(results[i].code, EXIT_USAGE, `cluster2 ${args.join(' ')} exits 64`);
    t.match(results[i].stderr, /^cluster2: .+\n\nUsage:\n/, 'one line saying what is wrong, then the usage');
  });
  const bad = await run(['start', CLI_APP, '--port', 'abc']);
  t.match(bad.stderr, /option "port" is "abc".*--port/, 'names the option and the flag');
  const missing = await run(['start', 'no/such/app.js', '--no-mon-port']);
  t.equal(missing.code, EXIT_NOINPUT, 'an APP that does not exist: 66');
  t.match(missing.stderr, /cannot find the app module "no\/such\/app.js"/);
  t.equal((await run(['--version'])).stdout.trim(), pkgVersion);
  t.equal((await run(['help'])).code, 0);
});

t.test('start, status, reload, scale, shutdown', async (t) => {
  const app = await startCli(t);
  const res = await request(app.port, '/');
  t.equal(res.status, 200);
  t.match(res.body, /^hello \d+ start /, 'the workers run the same command line');

  const [st] = await statusOf(app.pids);
  t.equal(st.pid, app.pid);
  t.equal(st.state, 'running');
  t.equal(st.workers.length, 2);
  t.ok(st.workers.every((w: any) => w.state === 'listening'));
  t.ok(st.strategy);
  t.equal(st.ecv.enabled, true);
  const human = await run(['status', '--pids', app.pids]);
  t.equal(human.code, 0);
  t.match(human.stdout, new RegExp(`^master ${app.pid}  running  up \\d+s  strategy `));
  t.match(human.stdout, /ECV enabled/);
  t.equal(human.stdout.match(/^ {2}worker \d+ {2}slot \d {2}listening/gm)?.length, 2);

  const before = st.workers.map((w: any) => w.pid).sort();
  const reload = await run(['reload', '--pids', app.pids]);
  t.equal(reload.code, 0, reload.stderr);
  t.match(reload.stdout, new RegExp(`master ${app.pid}: reloaded`));
  const [afterReload] = await statusOf(app.pids);
  const now = afterReload.workers.filter((w: any) => w.state === 'listening').map((w: any) => w.pid);
  t.equal(now.length, 2);
  t.notOk(
    now.some((p: number) => before.includes(p)),
    'every worker was replaced when reload returned',
  );
  t.ok(
    app.lines.some((l) => l.event === 'control' && l.request === 'reload'),
    'the master logged the request',
  );

  t.equal((await run(['scale', '+1', '--pids', app.pids])).code, 0);
  let [s] = await statusOf(app.pids);
  t.equal(s.workers.filter((w: any) => w.state === 'listening').length, 3, 'scale +1: 3 listening when it returns');
  t.equal((await run(['scale', '1', '--pids', app.pids])).code, 0);
  [s] = await statusOf(app.pids);
  t.equal(s.workers.length, 1, 'scale 1: the removed workers have exited when it returns');
  const tooFew = await run(['scale', '-1', '--pids', app.pids]);
  t.equal(tooFew.code, 1);
  t.match(tooFew.stderr, /scale: .*from 1 to 1024; asked for 0/);
  t.equal((await run(['scale', '+1', '--pids', app.pids, '--json'])).code, 0);

  const down = await run(['shutdown', '--pids', app.pids]);
  t.equal(down.code, 0, down.stderr);
  t.match(down.stdout, `master ${app.pid}: shutdown: exited`);
  t.notOk(alive(app.pid), 'the master is gone when shutdown returns');
  t.same(await app.exited, { code: 0, signal: null });
  t.same(fs.readdirSync(app.pids), [], 'pid files and the control socket are removed');

  const none = await run(['status', '--pids', app.pids]);
  t.equal(none.code, 3, 'status exits 3 when nothing runs');
  t.match(none.stderr, /no running master found in/);
  for (const cmd of ['reload', 'shutdown', 'stop'])
    t.equal((await run([cmd, '--pids', app.pids])).code, 3, `${cmd} exits 3 when nothing runs`);
});

t.test('a reload whose new code throws fails, and the old workers keep serving', async (t) => {
  const fail = path.join(tmpdir(), 'broken');
  const app = await startCli(t, { env: { C2_CLI_FAIL_FILE: fail } });
  const [before] = await statusOf(app.pids);
  const load = startLoad(app.port, { connections: 4 });
  await load.served(50);
  fs.writeFileSync(fail, '');
  const r = await run(['reload', '--pids', app.pids]);
  t.equal(r.code, 1, 'reload exits 1');
  t.match(r.stderr, /reload failed.*worker \d+ exited .*: the new code is broken/);
  await load.served(50);
  const result = await load.stop();
  t.equal(result.failed, 0, `no request failed (${JSON.stringify(result.errors)})`);
  const [after] = await statusOf(app.pids);
  t.same(
    after.workers.map((w: any) => w.pid).sort(),
    before.workers.map((w: any) => w.pid).sort(),
    'the same workers serve',
  );
  t.match(app.stderr(), /the new code is broken/, "the new worker's error is in the master's log");
  fs.unlinkSync(fail);
  t.equal((await run(['reload', '--pids', app.pids])).code, 0, 'once the code is fixed, reload works');
  t.equal((await run(['stop', '--pids', app.pids])).code, 0);
  t.same(await app.exited, { code: 0, signal: null });
});

t.test('a busy port exits 69 before forking', async (t) => {
  const holder = net.createServer();
  await new Promise<void>((r) => holder.listen(0, '127.0.0.1', r));
  t.teardown(() => holder.close());
  const port = (holder.address() as net.AddressInfo).port;
  const pids = path.join(tmpdir(), 'pids');
  const r = await run([
    'start',
    CLI_APP,
    '--host',
    '127.0.0.1',
    '--port',
    String(port),
    '--no-mon-port',
    '--pids',
    pids,
    '--workers',
    '1',
  ]);
  t.equal(r.code, EXIT_PORT_BUSY);
  t.match(r.stderr, new RegExp(`port ${port}.*busy`));
  t.notOk(r.stderr.includes('forked'), 'nothing was forked');
});

t.test('workers that keep dying before they listen exit 70', async (t) => {
  const fail = path.join(tmpdir(), 'broken');
  fs.writeFileSync(fail, '');
  const app = await startCli(t, { env: { C2_CLI_FAIL_FILE: fail }, ready: false, args: ['--workers', '1'] });
  t.same(await app.exited, { code: EXIT_CRASH_LOOP, signal: null });
  t.match(app.stderr(), /the new code is broken/);
});

t.test('what the app module may export', async (t) => {
  await Promise.all(
    ['handler', 'server', 'callback', 'default'].map(async (kind) => {
      const app = await startCli(t, { env: { C2_CLI_KIND: kind }, args: ['--workers', '1'] });
      const res = await request(app.port, '/');
      t.match(res.body, /^hello \d+/, `${kind}: serves`);
      t.equal((await run(['stop', '--pids', app.pids])).code, 0);
    }),
  );
});

t.test(
  'options from the package.json nearest to APP (flags win); an ES module app; status from that directory',
  async (t) => {
    const dir = tmpdir();
    fs.writeFileSync(
      path.join(dir, 'package.json'),
      JSON.stringify({
        type: 'module',
        cluster2: { noWorkers: 1, port: 0, monPort: false, pids: 'run', ecv: { path: '/health' } },
      }),
    );
    fs.mkdirSync(path.join(dir, 'src'));
    fs.writeFileSync(path.join(dir, 'src', 'app.js'), "export default (req, res) => res.end('esm ' + process.pid);\n");
    const app = await startCli(t, {
      app: path.join(dir, 'src', 'app.js'),
      defaults: false,
      pids: path.join(dir, 'run'),
      args: ['--workers', '2'],
    });
    t.equal((await request(app.port, '/')).body.slice(0, 4), 'esm ');
    t.equal((await request(app.port, '/health')).status, 200, 'ecv.path from package.json');
    const st = await run(['status', '--json'], { cwd: dir });
    t.equal(st.code, 0, 'status finds the pids directory of the package.json in the working directory');
    t.equal(JSON.parse(st.stdout)[0].workers.length, 2, '--workers 2 wins over noWorkers: 1');
    t.equal((await run(['shutdown'], { cwd: dir })).code, 0);

    fs.writeFileSync(path.join(dir, 'package.json'), JSON.stringify({ cluster2: { port: 'x' } }));
    const bad = await run(['start', path.join(dir, 'src', 'app.js')]);
    t.equal(bad.code, EXIT_CONFIG, 'an invalid option in package.json: 78');
    t.match(bad.stderr, /option "port" is "x".*package\.json/);
    const flag = await run(['start', path.join(dir, 'src', 'app.js'), '--port', '99999']);
    t.equal(flag.code, EXIT_USAGE, 'an invalid flag beside an invalid package.json option is still 64');
    fs.writeFileSync(path.join(dir, 'package.json'), JSON.stringify({ cluster2: { port: 0 } }));
    const flagOnly = await run(['start', path.join(dir, 'src', 'app.js'), '--port', '99999']);
    t.equal(flagOnly.code, EXIT_USAGE, 'an invalid flag: 64');
    fs.writeFileSync(path.join(dir, 'package.json'), '{ not json');
    const unreadable = await run(['start', path.join(dir, 'src', 'app.js')]);
    t.equal(unreadable.code, EXIT_CONFIG, 'a package.json that is not JSON: 78');
    t.match(unreadable.stderr, /cannot read .*package\.json/);
  },
);

t.test('human log lines on stderr; SIGTERM to the command shuts down gracefully', async (t) => {
  const pids = path.join(tmpdir(), 'pids');
  const p = spawn(
    RUNTIME_EXEC,
    [CLI, 'start', CLI_APP, '--port', '0', '--no-mon-port', '--workers', '1', '--pids', pids],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  t.teardown(() => killLeftovers(pids, [p.pid!]));
  let err = '';
  p.stderr!.on('data', (d) => {
    err += d;
  });
  await until(() => /ready: 1 worker\(s\) listening on port \d+/.test(err), 15_000, 'ready line');
  t.match(err, /^\d{4}-\d\d-\d\dT[\d:.]+Z cluster2\[\d+\] strategy \S+, port \d+$/m);
  t.match(err, /cluster2\[\d+\] worker \d+ listening on /);
  p.kill('SIGTERM');
  const code = await new Promise((r) => p.on('exit', r));
  t.equal(code, 0);
  t.match(err, /received SIGTERM/);
  t.match(err, /master exiting with code 0/);
});

t.test('--no-cluster: one process; shutdown reaches it by signal', async (t) => {
  const app = await startCli(t, { args: ['--no-cluster'] });
  const listening = await app.waitFor('listening');
  t.equal(listening.worker, app.pid, 'the command itself serves');
  t.match((await request(listening.address.port, '/')).body, `hello ${app.pid}`);
  const down = await run(['shutdown', '--pids', app.pids]);
  t.equal(down.code, 0, down.stderr);
  t.same(await app.exited, { code: 0, signal: null });
});

t.test('examples/ci-start.sh: starts and waits until ready; fails with 69 on a busy port', async (t) => {
  const script = path.join(__dirname, '..', 'examples', 'ci-start.sh');
  const dir = tmpdir();
  const sh = (port: number) =>
    new Promise<{ code: number | null; out: string }>((resolve) => {
      const p = spawn('sh', [script, CLI_APP, '--workers', '1'], {
        cwd: dir,
        env: { ...process.env, PORT: String(port), CLUSTER2: `${RUNTIME_EXEC} ${CLI}`, START_TIMEOUT: '30' },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let out = '';
      p.stdout!.on('data', (d) => {
        out += d;
      });
      p.stderr!.on('data', (d) => {
        out += d;
      });
      p.on('close', (code) => resolve({ code, out }));
    });
  const holder = net.createServer();
  await new Promise<void>((r) => holder.listen(0, r));
  const busy = (holder.address() as net.AddressInfo).port;
  const r = await sh(busy);
  t.equal(r.code, EXIT_PORT_BUSY);
  t.match(r.out, `ci-start: port ${busy} is busy`);
  await new Promise((r) => holder.close(r));

  const free = await new Promise<number>((resolve) => {
    const s = net.createServer().listen(0, () => {
      const p = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(p));
    });
  });
  const pids = path.join(dir, 'pids');
  // The script started the master in the background: kill whatever it left, by pid.
  t.teardown(() => killLeftovers(pids));
  const ok = await sh(free);
  t.equal(ok.code, 0, ok.out);
  t.match(ok.out, `serves on port ${free}`);
  t.equal((await request(free, '/')).status, 200, 'serving when the script returns');
  t.equal((await run(['shutdown', '--pids', pids])).code, 0);
});

t.test("examples/ci-start.sh through npx (its default): prints the master's pid, not npx's", async (t) => {
  const script = path.join(__dirname, '..', 'examples', 'ci-start.sh');
  const dir = npxApp();
  const pids = path.join(dir, 'pids');
  t.teardown(() => killLeftovers(pids));
  const port = await new Promise<number>((resolve) => {
    const s = net.createServer().listen(0, () => {
      const p = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(p));
    });
  });
  const env: NodeJS.ProcessEnv = { ...process.env, PORT: String(port), PIDS: pids, START_TIMEOUT: '60' };
  delete env.CLUSTER2; // the default: npx --no-install cluster2
  const r = await new Promise<{ code: number | null; out: string }>((resolve) => {
    const p = spawn('sh', [script, CLI_APP, '--workers', '1'], { cwd: dir, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    p.stdout!.on('data', (d) => {
      out += d;
    });
    p.stderr!.on('data', (d) => {
      out += d;
    });
    p.on('close', (code) => resolve({ code, out }));
  });
  t.equal(r.code, 0, r.out);
  const [st] = await statusOf(pids);
  t.match(r.out, `serves on port ${port} (master ${st.pid}, log `, "the master's pid, as status gives it");
  t.equal((await run(['shutdown', '--pids', pids])).code, 0);
});
