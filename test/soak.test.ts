// `npm run soak` works (issue 25, item 16): a few seconds of the soak (bench/soak.js), which must
// print its figures (the master's heap, RSS and fds, sampled after a GC) and leave nothing running.
// Nothing here asserts on speed or on the growth targets (a run this short is not judged).
import t from 'tap';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { alive, tmpdir, until } from './helpers/cluster';

const ROOT = path.join(__dirname, '..');

t.test('a short soak: samples after a GC, a table per 1,000 recycles, growth and targets', async (t) => {
  const dir = tmpdir('c2-soak-test-');
  const json = path.join(dir, 'soak.json');
  const args = ['--minutes', '0.15', '--sample-every', '1', '--reload-every', '3', '--scrape-every', '1'];
  const proc = spawn(
    process.execPath,
    [path.join(ROOT, 'bench', 'soak.js'), ...args, '--max-requests', '200', '--json', json],
    {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    },
  );
  let master = 0;
  t.teardown(() => {
    for (const pid of [proc.pid!, master])
      try {
        if (pid) process.kill(pid, 'SIGKILL');
      } catch {
        /* gone */
      }
    fs.rmSync(dir, { recursive: true, force: true });
  });
  let out = '';
  let err = '';
  proc.stdout!.on('data', (d) => (out += d));
  proc.stderr!.on('data', (d) => {
    err += d;
    master ||= Number(/master (\d+) \(--expose-gc\)/.exec(err)?.[1] ?? 0);
  });
  const code = await new Promise<number | null>((resolve) => proc.on('close', resolve));
  t.equal(code, 0, 'exit code 0', { err });
  t.match(
    out,
    /cluster2 soak: [\d.]+ min, strategy \w[\w-]*, 2 workers, maxRequests 200, 20 keep-alive connections; \d+ recycles/,
  );
  t.match(
    out,
    /\| minutes \| recycles \| +requests \| heap MB \| +RSS MB \| anon MB \| fds \| children \|/,
    'the table',
  );
  t.match(
    out,
    /growth after the warm-up, per 1,000 recycles \(least squares over \d+ samples\): heap -?[\d.]+ MB, RSS -?[\d.]+ MB \(anonymous -?[\d.]+ MB\)/,
  );
  t.match(out, /targets: heap growth < 1 MB per 1,000 recycles: not judged/, 'too short to be judged');
  const r = JSON.parse(fs.readFileSync(json, 'utf8'));
  t.ok(r.samples.length >= 3, 'samples taken');
  t.ok(
    r.samples.every((s: any) => s.gc === true && s.heapUsed > 0 && s.rss > s.heapUsed && s.fds > 0),
    'each after a GC in the master (--expose-gc): heap, RSS and fds',
  );
  t.ok(r.recycles > 0, `recycles happened (${r.recycles})`);
  t.ok(r.requests > 0, 'requests were served');
  t.equal(r.failed, 0, 'no request failed', { errors: r.errors });
  t.equal(r.masterExit, 0, 'the master shut down cleanly');
  t.equal(r.scrapes.failed, 0, 'every monitor scrape answered');
  t.ok(master > 0, 'the master pid was said');
  await until(() => !alive(master), 10_000, 'the master to be gone');
  t.pass('nothing left');
});
