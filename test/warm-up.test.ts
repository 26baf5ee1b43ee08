// A spare's JIT warm-up (lib/worker/warm-up.ts): its own loopback traffic,
// nothing left open after it, and a takeover ends it at once. The spare that
// runs it is tested in spare.test.ts (it warms up when forked on a quiet machine).
import t from 'tap';
import { WARM_KEEP_ALIVE, WARM_NEW_CONNECTIONS, warmUp } from '../dist/worker/warm-up.js';
import { until } from './helpers/cluster';

/** TCP handles of this process (servers and sockets). */
function tcpHandles(): number {
  return process.getActiveResourcesInfo().filter((r) => r === 'TCPServerWrap' || r === 'TCPSocketWrap').length;
}

t.test(
  'the warm-up answers its own requests, kept-alive and on new connections, and leaves nothing open',
  async (t) => {
    const before = tcpHandles();
    // No time limit here: a busy machine must not cut it short.
    const answered = await warmUp(() => false, 600_000);
    t.ok(
      answered >= WARM_KEEP_ALIVE + WARM_NEW_CONNECTIONS,
      `${answered} requests answered (${WARM_KEEP_ALIVE} kept-alive, ${WARM_NEW_CONNECTIONS} on new connections)`,
    );
    await until(() => tcpHandles() <= before, 5000, 'its server and sockets to close');
    t.pass('no server or socket of its own left');
  },
);

t.test('stop() ends the warm-up at once', async (t) => {
  const before = tcpHandles();
  let asked = 0;
  // A takeover after the warm-up's first 100 requests.
  const answered = await warmUp(() => ++asked > 100);
  t.ok(
    answered < 200,
    `${answered} requests answered, not the ${WARM_KEEP_ALIVE + WARM_NEW_CONNECTIONS} of a full one`,
  );
  await until(() => tcpHandles() <= before, 5000, 'its server and sockets to close');
  t.pass('no server or socket of its own left');
});
