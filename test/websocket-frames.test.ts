// The WebSocket frame scanner cluster2 uses to see close frames go by (pure
// parsing, no sockets), and the onDrain API's types and argument check.
import t from 'tap';
import { Cluster, type DrainInfo } from '../dist/index.js';
import { FrameScanner, closeFrame } from '../dist/worker/websocket-close.js';

/** A frame as a server (unmasked) or a client (masked) writes it. */
function frame(opcode: number, payload: Buffer, masked = false): Buffer {
  const n = payload.length;
  const head =
    n < 126
      ? [0x80 | opcode, n]
      : n < 65536
        ? [0x80 | opcode, 126, n >> 8, n & 0xff]
        : [0x80 | opcode, 127, 0, 0, 0, 0, (n >>> 24) & 0xff, (n >> 16) & 0xff, (n >> 8) & 0xff, n & 0xff];
  if (!masked) return Buffer.concat([Buffer.from(head), payload]);
  head[1] |= 0x80;
  const key = Buffer.from([1, 2, 3, 4]);
  return Buffer.concat([Buffer.from(head), key, Buffer.from(payload.map((b, i) => b ^ key[i % 4]))]);
}

t.test('a close frame after text frames of every length encoding, fed in one piece', async (t) => {
  const sc = new FrameScanner();
  for (const n of [0, 5, 125, 126, 300, 65535, 70_000]) sc.scan(frame(1, Buffer.alloc(n, 0x88)));
  t.notOk(sc.sawClose, 'payload bytes that look like a close header are skipped');
  t.notOk(sc.midFrame, 'at a frame boundary');
  sc.scan(closeFrame(1012, 'Service Restart'));
  t.ok(sc.sawClose, 'the close frame is seen');
});

t.test('frames split at every byte, masked (client to server)', async (t) => {
  const sc = new FrameScanner();
  const before = Buffer.concat([frame(2, Buffer.alloc(200, 0x88), true), frame(9, Buffer.from('ping'), true)]);
  const all = Buffer.concat([before, frame(8, Buffer.from([0x03, 0xe8]), true)]);
  let seenAt = -1;
  for (let i = 0; i < all.length && seenAt < 0; i++) {
    sc.scan(all.subarray(i, i + 1));
    if (sc.sawClose) seenAt = i + 1;
  }
  // 2 header bytes + 4 of the mask key.
  t.equal(seenAt, before.length + 6, 'the close frame is seen once its header is complete, not before');
});

t.test('midFrame while a payload is still to come', async (t) => {
  const sc = new FrameScanner();
  const f = frame(1, Buffer.alloc(1000, 1));
  sc.scan(f.subarray(0, 10));
  t.ok(sc.midFrame, 'in the middle of a frame');
  sc.scan(f.subarray(10));
  t.notOk(sc.midFrame, 'done');
});

t.test('closeFrame: RFC 6455 layout', async (t) => {
  const f = closeFrame(1001, 'Going Away');
  t.same([...f.subarray(0, 4)], [0x88, 12, 0x03, 0xe9], 'FIN + opcode 8, length, code 1001');
  t.equal(f.subarray(4).toString(), 'Going Away', 'reason');
});

t.test('onDrain: typed, chainable; a handler that is not a function is a TypeError', async (t) => {
  const c = new Cluster({ monPort: false });
  const seen: DrainInfo[] = [];
  t.equal(
    c.onDrain(({ reason, deadline, signal }) => {
      seen.push({ reason, deadline, signal });
    }),
    c,
    'returns the Cluster',
  );
  t.equal(c.drainSignal.aborted, false, 'the drain signal is not aborted before a drain');
  t.throws(() => c.onDrain(42 as never), {
    name: 'TypeError',
    message: /onDrain\(handler\): handler must be a function.*got number/,
  });
});
