import * as http from 'node:http';

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

/**
 * Fire `n` requests at once, each on a new connection. `connected` resolves
 * once every one has connected or failed; `done` once every one has ended.
 */
export function burst(port: number, n: number, path = '/slow?ms=20'): { connected: Promise<void>; done: Promise<BurstResult> } {
  const r: BurstResult = { answered: 0, refused: 0, reset: 0, hangup: 0, other: {}, closing: 0 };
  let pending = n;
  let unconnected = n;
  let onConnected!: () => void;
  let onDone!: (r: BurstResult) => void;
  const connected = new Promise<void>((resolve) => { onConnected = resolve; });
  const done = new Promise<BurstResult>((resolve) => { onDone = resolve; });
  const settled = () => { if (--unconnected === 0) onConnected(); };
  const end = (fail?: NodeJS.ErrnoException) => {
    if (!fail) r.answered++;
    else if (fail.message === 'socket hang up') r.hangup++;
    else if (fail.code === 'ECONNREFUSED') r.refused++;
    else if (fail.code === 'ECONNRESET') r.reset++;
    else r.other[fail.code ?? fail.message] = (r.other[fail.code ?? fail.message] ?? 0) + 1;
    if (--pending === 0) onDone(r);
  };
  for (let i = 0; i < n; i++) {
    let counted = false;
    let finished = false;
    const once = () => { if (!counted) { counted = true; settled(); } };
    const fin = (e?: NodeJS.ErrnoException) => { if (!finished) { finished = true; end(e); } };
    const req = http.get({ host: '127.0.0.1', port, path, agent: false, timeout: 60_000 }, (res) => {
      res.resume();
      res.on('end', () => {
        if (res.headers.connection === 'close') r.closing++;
        fin(res.statusCode === 200 ? undefined : Object.assign(new Error(`status-${res.statusCode}`), { code: `status-${res.statusCode}` }));
      });
      res.on('error', fin);
    });
    req.on('socket', (s) => s.once('connect', once));
    req.on('timeout', () => req.destroy(Object.assign(new Error('client timeout'), { code: 'TIMEOUT' })));
    req.on('error', (e: NodeJS.ErrnoException) => { once(); fin(e); });
  }
  return { connected, done };
}
