// The burst client is bench/burst.js (one implementation for the tests and the bench).
const impl = require('../../bench/burst.js') as { burst: BurstFn };

/** How a burst's requests ended. A reset is a connection the kernel completed and then dropped. */
export interface BurstResult {
  answered: number;
  /** ECONNREFUSED: no listener any more; the client knows nothing was sent. */
  refused: number;
  /** ECONNRESET on a completed connection: the request may have run. */
  reset: number;
  /** 'socket hang up': the connection closed without an answer. */
  hangup: number;
  /** Anything else, by kind. */
  other: Record<string, number>;
  /** Answers that carried `Connection: close`. */
  closing: number;
}

type BurstFn = (port: number, n: number, path?: string) => { connected: Promise<void>; done: Promise<BurstResult> };

/**
 * Fire `n` requests at once, each on a new connection. `connected` resolves
 * once every one has connected or failed; `done` once every one has ended.
 */
export const burst = impl.burst;
