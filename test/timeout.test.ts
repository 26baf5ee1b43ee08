import t from 'tap';
import * as net from 'node:net';
import { startApp } from './helpers/cluster';

function connectIdle(port: number) {
  const s = net.connect(port, '127.0.0.1');
  const closed = new Promise<void>((resolve) => s.once('close', () => resolve()));
  s.on('error', () => {});
  return { s, closed };
}

t.test('an idle socket is ended after `timeout` and a warning says so', async (t) => {
  const app = await startApp(t, { opts: { timeout: 200 } });
  const { s, closed } = connectIdle(app.port);
  t.teardown(() => {
    s.destroy();
  });
  await closed;
  const w = await app.waitFor('warning', (e) => /idle for 200 ms/.test(e.args[0]));
  t.match(w.args[0], /^worker \d+: closed a connection from .* idle for 200 ms$/);
});

t.test('timeout: 0 disables the idle timeout', async (t) => {
  const app = await startApp(t, { opts: { timeout: 0 } });
  const { s, closed } = connectIdle(app.port);
  t.teardown(() => {
    s.destroy();
  });
  const state = await Promise.race([closed.then(() => 'closed'), new Promise((r) => setTimeout(() => r('open'), 600))]);
  t.equal(state, 'open', 'still open after 600 ms');
});

const GET = 'GET / HTTP/1.1\r\nHost: x\r\n\r\n';

/** Responses to a raw keep-alive client: how many arrived (each ends with the app's "hello <pid>"). */
function responses(s: net.Socket): { count: () => number; next: () => Promise<void> } {
  let count = 0;
  let text = '';
  let wake: (() => void) | null = null;
  s.on('data', (d: Buffer) => {
    text += d.toString('latin1');
    for (let i = text.indexOf('hello '); i !== -1; i = text.indexOf('hello ')) {
      text = text.slice(i + 6);
      count++;
      wake?.();
    }
  });
  return {
    count: () => count,
    next: () => {
      const n = count;
      return new Promise<void>((resolve) => {
        wake = () => {
          if (count > n) resolve();
        };
      });
    },
  };
}

t.test('a connection in use is not idle: requests more than `timeout` apart in all keep it open', async (t) => {
  const app = await startApp(t, { opts: { timeout: 1000, noWorkers: 1 } });
  const { s, closed } = connectIdle(app.port);
  t.teardown(() => {
    s.destroy();
  });
  let open = true;
  void closed.then(() => (open = false));
  const r = responses(s);
  // Ten requests 150 ms apart: 1350 ms of use, each gap far under the timeout (a busy machine
  // may fire a 150 ms timer hundreds of ms late).
  for (let i = 0; i < 10; i++) {
    if (i > 0) await new Promise((resolve) => setTimeout(resolve, 150));
    const answered = r.next();
    s.write(GET);
    await answered;
  }
  t.equal(r.count(), 10, 'ten answers on one connection');
  t.ok(open, 'still open after 1350 ms of use with a 1000 ms timeout');
  await closed;
  const w = await app.waitFor('warning', (e) => /idle for 1000 ms/.test(e.args[0]));
  t.match(w.args[0], /closed a connection from \S+:\d+ idle for 1000 ms$/, 'then closed as idle');
});

t.test("a keep-alive connection that Node closes after the app's keepAliveTimeout is not reported idle", async (t) => {
  const app = await startApp(t, { opts: { timeout: 2000, noWorkers: 1 }, env: { C2_KEEPALIVE_MS: '100' } });
  const kept = connectIdle(app.port);
  t.teardown(() => {
    kept.s.destroy();
  });
  const r = responses(kept.s);
  const answered = r.next();
  kept.s.write(GET);
  await answered;
  await kept.closed;
  // An idle connection after it: its warning comes after any the first one would have caused (one worker, one channel).
  const idle = connectIdle(app.port);
  t.teardown(() => {
    idle.s.destroy();
  });
  await new Promise<void>((resolve) => idle.s.once('connect', () => resolve()));
  const port = idle.s.localPort;
  await idle.closed;
  await app.waitFor('warning', (e) => e.args[0].includes(`:${port} idle for 2000 ms`));
  const idles = app.events.filter((e) => e.ev === 'warning' && /idle for/.test(e.args[0]));
  t.equal(idles.length, 1, `one idle warning, for the idle connection only: ${JSON.stringify(idles)}`);
});
