// The Kubernetes recipe of docs/load-balancers.md: the preStop command, run as written, disables
// ECV (readiness fails) while the liveness path the recipe names still answers.
import t from 'tap';
import { spawn } from 'node:child_process';
import { alive, startApp, until } from './helpers/cluster';
import { request } from './helpers/http';
import { docBlocks } from './helpers/doc-blocks';

const yaml = docBlocks('docs/load-balancers.md', 'Kubernetes', 'yaml')[0];

t.test("the recipe's probes: readiness on /ecv with failureThreshold 2, liveness elsewhere", async (t) => {
  t.match(yaml, /readinessProbe:\n\s+httpGet: \{ path: \/ecv, port: 3000 \}[\s\S]*?failureThreshold: 2/);
  const live = /livenessProbe:\n\s+httpGet: \{ path: (\S+), port: 3000 \}/.exec(yaml);
  t.ok(live, 'a liveness probe');
  t.not(live![1], '/ecv', 'liveness is not ECV');
});

t.test("the recipe's preStop command, run as written, makes ECV DISABLED", async (t) => {
  const app = await startApp(t, { opts: { noWorkers: 2, ecv: { control: true } } });
  t.equal((await request(app.port, '/ecv')).status, 200, 'AVAILABLE before');
  const line = /command: (\[.*\])/.exec(yaml)![1];
  const argv = JSON.parse(line) as string[];
  t.equal(argv[0], 'node');
  // The one change: the test's port for the recipe's 3000.
  const args = argv.slice(1).map((a) => a.replace('127.0.0.1:3000', `127.0.0.1:${app.port}`));
  const hook = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  hook.stdout!.on('data', (d) => {
    out += d;
  });
  hook.stderr!.on('data', (d) => {
    out += d;
  });
  t.teardown(() => {
    if (hook.pid && alive(hook.pid)) process.kill(hook.pid, 'SIGKILL');
  });
  await until(async () => (await request(app.port, '/ecv')).status === 400, 15_000, 'ECV to be DISABLED');
  t.pass('DISABLED while the hook waits');
  t.ok(alive(hook.pid!), 'the hook is still waiting (preStop delays SIGTERM)');
  const r = await request(app.port, '/health');
  t.equal(r.status, 200, 'the app still answers its own path (what liveness hits)');
  t.equal(out, '', 'the hook printed nothing');
});
