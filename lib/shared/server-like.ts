// What counts as a server the app hands over: one that can do what cluster2 asks of it
// (listen, close, say where it listens, emit 'connection' and 'listening'), whatever its
// class. An `instanceof net.Server` test refuses Bun's http.Server (its own class) and any
// library whose server wraps Node's instead of extending it.

import type * as net from 'node:net';

/** Can listen, close, tell its address and emit events ('connection', 'listening', 'error'). */
export function isServerLike(v: unknown): v is net.Server {
  if (v === null || typeof v !== 'object') return false;
  const s = v as Record<string, unknown>;
  return (
    typeof s.listen === 'function' &&
    typeof s.close === 'function' &&
    typeof s.address === 'function' &&
    typeof s.on === 'function' &&
    typeof s.once === 'function' &&
    typeof s.emit === 'function'
  );
}

/** A thenable: a Promise, or any object with then() (an async listen callback's result). */
export function isThenable(v: unknown): v is PromiseLike<unknown> {
  return (
    v !== null &&
    (typeof v === 'object' || typeof v === 'function') &&
    typeof (v as { then?: unknown }).then === 'function'
  );
}
