// Logging never kills the service (issue #17): the reader of the master's
// stdout and stderr goes away (`cluster2 start app 2>&1 | head -1`), and the
// cluster still serves; the first error is in the event log.
import t from 'tap';
import { alive, until } from './helpers/cluster';
import { run, startCli } from './helpers/cli';
import { request } from './helpers/http';

t.test('stdout and stderr closed by their reader (| head -1): the cluster serves on', async (t) => {
  const app = await startCli(t);
  // What head does after its first line: close the read ends of the pipes.
  app.proc.stdout!.destroy();
  app.proc.stderr!.destroy();
  // Make the master and a worker write: a worker dies (logged), its replacement logs too.
  const status = JSON.parse((await run(['status', '--pids', app.pids, '--json'])).stdout)[0];
  process.kill(status.workers[0].pid, 'SIGKILL');
  const since = Date.now();
  // Poll for 5 s: every request is answered and the master stays.
  const failed: string[] = [];
  let served = 0;
  await until(
    async () => {
      await request(app.port, '/').then(
        (r) => (r.status === 200 ? served++ : failed.push(`status ${r.status}`)),
        (e: Error) => failed.push(e.message),
      );
      return Date.now() - since > 5000;
    },
    30_000,
    '5 s of service',
  );
  t.same(failed, [], `every request answered for 5 s (${served})`);
  t.ok(alive(app.pid), 'the master is alive');
  const after = JSON.parse((await run(['status', '--pids', app.pids, '--json'])).stdout)[0];
  t.equal(
    after.workers.filter((w: { state: string }) => w.state === 'listening').length,
    2,
    'the dead worker was replaced',
  );
  const warning = after.events.find(
    (e: { event: string; args: string[] }) => e.event === 'warning' && /stderr failed \(EPIPE\)/.test(e.args[0]),
  );
  t.ok(warning, 'the first error is in the event log');
  t.equal(
    after.events.filter(
      (e: { event: string; args: string[] }) =>
        e.event === 'warning' && / failed \(E/.test(e.args[0]) && e.args[0].includes(`process ${app.pid}`),
    ).length,
    1,
    'once: later ones are swallowed',
  );
});
