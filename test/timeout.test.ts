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
