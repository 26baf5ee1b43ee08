// A busy port makes the master exit 69 before forking anything; run with the
// addon and with the JS fallback.
import t, { type Test } from 'tap';
import * as net from 'node:net';
import { startApp } from './helpers/cluster';
import { addonBuilt, startHolder, NoReusePort } from './helpers/native-util';
import { pkgRequire } from './helpers/package';

async function startExpectingExit(t: Tap, opts: Record<string, unknown>, nat: string) {
  const app = await startApp(t, { opts, env: { CLUSTER2_NATIVE: nat }, listening: 0, timeout: 10_000 });
  const { code } = await app.exited;
  return { app, code };
}
type Tap = Test;

for (const nat of ['1', '0']) {
  t.test(`CLUSTER2_NATIVE=${nat}`, async (t) => {
    t.test(
      'a port held by a plain listener in another process: exit 69, one line naming host, port and holder',
      async (t) => {
        const holder = await startHolder(t, 'plain', '');
        const { app, code } = await startExpectingExit(t, { port: holder.port }, nat);
        t.equal(code, 69);
        const lines = app.stderr().trim().split('\n');
        t.equal(lines.length, 1, 'one line on stderr');
        t.match(
          lines[0],
          new RegExp(
            `port ${holder.port} on all interfaces is busy \\(EADDRINUSE\\), held by pid ${holder.pid}: .*holder\\.js`,
          ),
        );
        t.equal(app.events.filter((e) => e.ev === 'forked').length, 0, 'nothing forked');
      },
    );

    t.test("a port held by another program's SO_REUSEPORT socket is busy", async (t) => {
      let holder;
      try {
        holder = await startHolder(t, 'reuseport', '');
      } catch (e) {
        if (e instanceof NoReusePort) return t.pass('skipped', { skip: 'no way to make a SO_REUSEPORT socket here' });
        throw e;
      }
      for (const strategy of ['reuseport', 'round-robin']) {
        const { app, code } = await startExpectingExit(t, { port: holder.port, strategy }, nat);
        t.equal(code, 69, `${strategy}: exit 69`);
        t.match(app.stderr(), new RegExp(`port ${holder.port} .*busy.*pid ${holder.pid}`));
      }
    });

    t.test('a busy monitor port: exit 69', async (t) => {
      const holder = await startHolder(t, 'plain', '127.0.0.1');
      const { app, code } = await startExpectingExit(t, { monPort: holder.port }, nat);
      t.equal(code, 69);
      t.match(app.stderr(), new RegExp(`port ${holder.port} on 127\\.0\\.0\\.1 is busy`));
    });

    t.test('portBusyExitCode changes the code; cluster: false exits the same way', async (t) => {
      const holder = await startHolder(t, 'plain', '');
      t.equal((await startExpectingExit(t, { port: holder.port, portBusyExitCode: 75 }, nat)).code, 75);
      t.equal((await startExpectingExit(t, { port: holder.port, cluster: false }, nat)).code, 69);
    });

    t.test('a port left in TIME_WAIT by a previous run is not busy', async (t) => {
      // Make TIME_WAIT on the server side: the server closes first.
      const port = await new Promise<number>((resolve) => {
        const srv = net.createServer((s) => s.end());
        srv.listen(0, () => {
          const p = (srv.address() as net.AddressInfo).port;
          const c = net.connect(p, '127.0.0.1');
          c.on('end', () => {
            c.end();
            srv.close(() => resolve(p));
          });
        });
      });
      const app = await startApp(t, { opts: { port }, env: { CLUSTER2_NATIVE: nat } });
      t.equal(app.port, port, 'started on the port');
      process.kill(app.pid, 'SIGTERM');
      t.equal((await app.exited).code, 0);
    });
  });
}

t.test('the addon is what CLUSTER2_NATIVE=1 uses here', { skip: !addonBuilt() && 'addon not built' }, async (t) => {
  const { implementation } = pkgRequire<typeof import('../dist/shared/native.js')>('shared/native.js');
  t.equal(implementation, process.env.CLUSTER2_NATIVE === '0' ? 'js' : 'native');
});
