// The monitor under a slowloris attack (issue #17): 1,100 half-open
// connections held from the same address, and /status still answers;
// headersTimeout is enforced (Node's default check runs every 30 s).
import t from 'tap';
import * as net from 'node:net';
import { startApp } from './helpers/cluster';
import { freePort } from './helpers/native-util';
import { request } from './helpers/http';

/** Open n connections that each send half a request header and then nothing. */
async function halfOpen(
  t: { teardown(fn: () => void): void },
  port: number,
  n: number,
): Promise<{ sockets: net.Socket[]; closed(): number }> {
  const sockets: net.Socket[] = [];
  let closed = 0;
  t.teardown(() => {
    for (const s of sockets) s.destroy();
  });
  await Promise.all(
    Array.from(
      { length: n },
      () =>
        new Promise<void>((resolve) => {
          const s = net.connect(port, '127.0.0.1', () => {
            s.write('GET /status HTTP/1.1\r\nHost: localhost\r\nX-Slow: ');
            resolve();
          });
          s.on('error', () => resolve());
          s.on('close', () => {
            closed++;
            resolve();
          });
          sockets.push(s);
        }),
    ),
  );
  return { sockets, closed: () => closed };
}

t.test('with 1,100 half-open connections held, /status answers a well-behaved client', async (t) => {
  const monPort = await freePort();
  await startApp(t, { opts: { monPort, noWorkers: 1 } });
  t.equal((await request(monPort, '/status')).status, 200);
  const held = await halfOpen(t, monPort, 1100);
  // A generous deadline (the target is 1 s), well inside headersTimeout (10 s): the connections are still held.
  for (let i = 0; i < 3; i++) {
    const r = await request(monPort, '/status', { timeout: 5000 });
    t.equal(r.status, 200, `/status answered (${i + 1})`);
    t.equal(JSON.parse(r.body).workers.length, 1);
  }
  const ecv = await request(monPort, '/ecv', { timeout: 5000 });
  t.equal(ecv.status, 200, 'the monitor-port ECV answers too');
  t.ok(held.sockets.length - held.closed() > 0, 'half-open connections are still held');
});

t.test("headersTimeout is enforced within seconds, not after Node's 30 s check", async (t) => {
  const monPort = await freePort();
  await startApp(t, { opts: { monPort, noWorkers: 1 } });
  const held = await halfOpen(t, monPort, 5);
  const started = Date.now();
  await new Promise<void>((resolve) => {
    const check = setInterval(() => {
      if (held.closed() === 5 || Date.now() - started > 25_000) {
        clearInterval(check);
        resolve();
      }
    }, 100);
  });
  t.equal(held.closed(), 5, `closed after ${Date.now() - started} ms: headersTimeout 10 s, checked every second`);
});
