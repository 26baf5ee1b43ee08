// Every strategy, run twice: with the native addon (CLUSTER2_NATIVE=1) and with
// the pure-JS fallback (CLUSTER2_NATIVE=0), as one suite against both.
import t from 'tap';
import { startApp, until } from './helpers/cluster';
import { rawGet, request } from './helpers/http';
import { addonBuilt } from './helpers/native-util';
import { PKG_DIST, pkgRequire } from './helpers/package';
import { inRuntime } from './helpers/runtime';

const { implementation } = pkgRequire<typeof import('../dist/shared/native.js')>('shared/native.js');
// Whether the runtime under test (Node, or Bun with CLUSTER2_TEST_RUNTIME=bun) has the reusePort listen option.
const nodeHasReusePort = inRuntime(
  (dist) => (require(`${dist}/shared/native.js`) as { nodeHasReusePort: boolean }).nodeHasReusePort,
  PKG_DIST,
);

const linux = process.platform === 'linux';

/** What each asked strategy becomes with or without the addon on this Node. */
function expected(asked: string, native: boolean): string {
  if (asked === 'reuseport' || asked === 'auto') {
    if (native && linux) return 'reuseport';
    if (nodeHasReusePort && linux) return 'reuseport-node';
    return 'round-robin';
  }
  return asked;
}

/** Fresh connections, `batch` at a time, until every worker has answered. */
async function answeredByAll(
  port: number,
  workers: number[],
  path = '/slow?ms=20',
  batch = 16,
): Promise<Record<number, number>> {
  const count: Record<number, number> = {};
  await until(
    async () => {
      const bodies = await Promise.all(Array.from({ length: batch }, () => request(port, path)));
      for (const b of bodies) {
        const pid = Number(b.body.split(' ')[1]);
        count[pid] = (count[pid] ?? 0) + 1;
      }
      return workers.every((w) => count[w] > 0);
    },
    20_000,
    `answers from all of ${workers.join(', ')}`,
  );
  return count;
}

t.test('implementation reported', async (t) => {
  t.equal(implementation, addonBuilt() && process.env.CLUSTER2_NATIVE !== '0' ? 'native' : 'js');
});

for (const nat of ['1', '0']) {
  const native = nat === '1' && addonBuilt();
  t.test(`CLUSTER2_NATIVE=${nat}`, async (t) => {
    for (const asked of ['auto', 'reuseport', 'round-robin', 'shared']) {
      t.test(`strategy ${asked}`, async (t) => {
        const app = await startApp(t, { opts: { strategy: asked, noWorkers: 2 }, env: { CLUSTER2_NATIVE: nat } });
        const strategy = app.events.find((e) => e.ev === 'strategy')!.args[0];
        t.equal(strategy, expected(asked, native), 'strategy in use is reported');
        if (asked === 'reuseport' && strategy !== 'reuseport') {
          t.match(app.stderr(), /cluster2: .*reuseport/, 'says once at start that the addon is not in use');
        }
        if (strategy === 'reuseport-node') {
          const w = await app.waitFor('warning', (e) => /tcp_migrate_req/.test(e.args[0]));
          t.match(
            w.args[0],
            /reset unless net\.ipv4\.tcp_migrate_req is 1 \(it is (0|1|unknown)\)/,
            'reports the sysctl at start',
          );
        }
        const count = await answeredByAll(app.port, app.workers());
        t.pass(`served by every worker: ${JSON.stringify(count)}`);
      });
    }
  });
}

t.test(
  'reuseport spreads new connections over every worker',
  { skip: !(addonBuilt() && linux) && 'needs the addon on Linux' },
  async (t) => {
    const app = await startApp(t, { opts: { strategy: 'reuseport', noWorkers: 2 } });
    const count: Record<string, number> = {};
    for (let i = 0; i < 100; i++) {
      const pid = (await request(app.port, '/')).body.split(' ')[1];
      count[pid] = (count[pid] ?? 0) + 1;
    }
    const shares = app.workers().map((w) => count[w] ?? 0);
    t.equal(shares.length, 2);
    for (const s of shares)
      t.ok(s >= 15, `each worker took a fair share of 100 sequential connections: ${shares.join('/')}`);
  },
);

t.test(
  'reuseport: connections queued on a blocked worker are all answered by its replacement after SIGKILL',
  { skip: !(addonBuilt() && linux) && 'needs the addon on Linux' },
  async (t) => {
    const app = await startApp(t, { opts: { strategy: 'reuseport', noWorkers: 2, heartbeatTimeout: 0 } });
    // Block one worker's event loop for good.
    const hung = Number((await request(app.port, '/hang')).body.split(' ')[1]);
    t.ok(app.workers().includes(hung), `worker ${hung} is blocked`);
    // New connections: the kernel puts about half of them in the blocked worker's queue.
    // Every connection completes its handshake (so it sits in a queue or was accepted) before the kill.
    const conns = await Promise.all(Array.from({ length: 30 }, () => rawGet(app.port)));
    process.kill(hung, 'SIGKILL');
    const results = await Promise.all(conns.map((c) => c.response));
    const failed = results.filter((r) => r instanceof Error);
    t.equal(failed.length, 0, `no connection lost: ${failed.map(String).join(', ')}`);
    const pids = new Set(results.map((r) => (r as { body: string }).body.split(' ')[1]));
    t.notOk(pids.has(String(hung)), 'none answered by the blocked worker');
    t.ok(pids.size >= 2, `answered by the other worker and the replacement: ${[...pids].join(', ')}`);
  },
);
