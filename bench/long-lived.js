'use strict';
// Long-lived connections through a rolling reload (issue 11), each scenario
// with its figures, summary and table:
//   websocket: N ws clients, each sending a message every 100 ms and counting
//     its echoes; a reload (the app has no drain code: cluster2's close frames
//     are the safety net). Measured: the close codes, the time from reload()
//     until every client is connected again to a new worker, messages lost
//     (sent, never echoed), and the reload's wall time.
//   http2: 16 streams in flight on one h2c session (a new session after
//     GOAWAY), steady, then a reload. Measured: streams per second before and
//     during, streams failed, streams refused under GOAWAY (retried).
const http2 = require('node:http2');
const { sleep } = require('./closed-loop');
const { summary } = require('./stats');
const { until } = require('./servers');

const DRAIN_MS = 3000;
const applies = (s) => s !== 'single' && s !== 'reference';
const OPTIONS = { gracefulTimeout: DRAIN_MS };

/** The bench app serving `kind` (ws or h2), with the scenarios' short drain window. */
const startKind = (ctx, strategy, kind) => ctx.start(strategy, { env: { BENCH_KIND: kind }, options: OPTIONS });

/** Reload; resolves with when it was asked, its wall time and its outcome. */
async function reload(server) {
  server.send('reload');
  const start = Date.now();
  const end = await Promise.race([
    server.waitFor('reloaded', undefined, 30_000),
    server.waitFor('reload-failed', undefined, 30_000),
  ]);
  return { start, wall: Date.now() - start, outcome: end.ev === 'reloaded' ? 'ok' : `failed: ${end.args[0]}` };
}

function wsClient(WebSocket, port, olds, stats) {
  const c = { pid: 0, open: false, stopped: false, seq: 0, sent: new Set(), timer: null };
  const connect = () => {
    const ws = new WebSocket(`ws://127.0.0.1:${port}/`);
    c.ws = ws;
    ws.on('message', (m) => {
      const s = String(m);
      if (s.startsWith('pid ')) {
        c.pid = Number(s.slice(4));
        c.open = true;
        if (!olds.has(c.pid)) stats.reconnectedAt.set(c, Date.now());
        return;
      }
      c.sent.delete(s);
    });
    ws.on('close', (code) => {
      c.open = false;
      stats.codes[code] = (stats.codes[code] || 0) + 1;
      stats.lost += c.sent.size;
      c.sent.clear();
      if (!c.stopped) setImmediate(connect);
    });
    ws.on('error', () => {});
  };
  c.timer = setInterval(() => {
    if (!c.open || c.ws.readyState !== 1) return;
    const m = String(++c.seq);
    c.sent.add(m);
    c.ws.send(m);
  }, 100);
  connect();
  c.stop = () => {
    c.stopped = true;
    clearInterval(c.timer);
    c.ws.terminate();
  };
  return c;
}

const websocket = {
  name: 'websocket',
  title: 'WebSocket clients through a rolling reload',
  applies,
  async run(strategy, ctx) {
    const WebSocket = require('ws');
    const server = await startKind(ctx, strategy, 'ws');
    const n = ctx.connections;
    const stats = { codes: {}, lost: 0, reconnectedAt: new Map() };
    const clients = [];
    try {
      const olds = new Set(server.workers());
      for (let i = 0; i < n; i++) clients.push(wsClient(WebSocket, server.port, olds, stats));
      await until(() => clients.every((c) => c.open), 20_000, 'WebSocket clients to connect');
      await sleep(ctx.quick ? 300 : 600);
      const { start, wall, outcome } = await reload(server);
      await until(
        () => clients.every((c) => stats.reconnectedAt.has(c)),
        DRAIN_MS + 20_000,
        'every client on a new worker',
      );
      const all = Math.max(...clients.map((c) => stats.reconnectedAt.get(c))) - start;
      await sleep(300);
      // The messages still unanswered now are lost (their echo would have come long ago).
      for (const c of clients) stats.lost += [...c.sent].filter((m) => Number(m) < c.seq - 2).length;
      return {
        active: server.active,
        outcome,
        clients: n,
        wall,
        allReconnected: all,
        codes: { ...stats.codes },
        lost: stats.lost,
        abnormal: stats.codes[1006] || 0,
      };
    } finally {
      for (const c of clients) c.stop();
      await server.stop();
    }
  },
  summarize(byStrategy) {
    return per(byStrategy, (ok) => ({
      wall: summary(ok.map((r) => r.wall)),
      allReconnected: summary(ok.map((r) => r.allReconnected)),
      lost: ok.reduce((a, r) => a + r.lost, 0),
      abnormal: ok.reduce((a, r) => a + r.abnormal, 0),
      codes: addCodes(ok.map((r) => r.codes)),
      clients: ok[0]?.clients,
    }));
  },
  table(r, { label, broke, cell }) {
    return {
      title: `WebSocket clients through a rolling reload (echo app without drain code, gracefulTimeout ${DRAIN_MS} ms)`,
      columns: [
        'strategy',
        'clients',
        'reload() wall ms',
        'all reconnected to new workers ms',
        'close codes (all runs)',
        '1006 (cut)',
        'messages lost',
      ],
      rows: Object.entries(r).map(([s, o]) => [
        label(s, o) + broke(o),
        o.clients,
        cell(o.wall),
        cell(o.allReconnected),
        Object.entries(o.codes)
          .map(([k, v]) => `${k}: ${v}`)
          .join(', '),
        o.abnormal,
        o.lost,
      ]),
      note:
        'each client sends a message every 100 ms and reconnects at once when closed (a client may land on an old worker not yet replaced, and be closed twice); ' +
        'cluster2 closes the sockets with 1012, spread over the drain window; lost: sent, never echoed (all runs).',
    };
  },
  brief: (r) =>
    `${r.outcome}, wall ${r.wall} ms, all reconnected ${r.allReconnected} ms, codes ${JSON.stringify(r.codes)}, lost ${r.lost}`,
};

function h2Client(port) {
  const st = { ok: 0, failed: 0, retried: 0, stopped: false, open: 0, done: [] };
  let session;
  const current = () => {
    if (session && !session.closed && !session.destroyed) return session;
    const s = http2.connect(`http://127.0.0.1:${port}`);
    s.on('error', () => {});
    s.on('goaway', () => {
      if (session === s) session = undefined;
    });
    return (session = s);
  };
  const one = () => {
    if (st.stopped) return;
    st.open++;
    let req;
    try {
      req = current().request({ ':path': '/' });
    } catch {
      session = undefined;
      st.open--;
      st.retried++;
      setImmediate(one);
      return;
    }
    let status = 0;
    let error = '';
    req.on('response', (h) => {
      status = h[':status'];
    });
    req.on('data', () => {});
    req.on('error', (e) => {
      error = e.code || e.message;
    });
    req.on('close', () => {
      st.open--;
      if (status === 200) {
        st.ok++;
        st.done.push(Date.now());
      } else if (req.rstCode === http2.constants.NGHTTP2_REFUSED_STREAM || error === 'ERR_HTTP2_GOAWAY_SESSION')
        st.retried++;
      else st.failed++;
      one();
    });
  };
  for (let i = 0; i < 16; i++) one();
  st.stop = async () => {
    st.stopped = true;
    await until(() => st.open === 0, 20_000, 'streams in flight').catch(() => {});
    if (session) session.close();
  };
  return st;
}

const rate = (done, from, to) => done.filter((t) => t >= from && t < to).length / Math.max(0.001, (to - from) / 1000);

const h2 = {
  name: 'http2',
  title: 'HTTP/2 (h2c) steady load and a rolling reload',
  applies,
  async run(strategy, ctx) {
    const server = await startKind(ctx, strategy, 'h2');
    const client = h2Client(server.port);
    try {
      const warm = ctx.quick ? 500 : 1000;
      await sleep(warm);
      const t0 = Date.now();
      await sleep(ctx.duration * 500);
      const { start, wall, outcome } = await reload(server);
      await sleep(300);
      await client.stop();
      return {
        active: server.active,
        outcome,
        steadyRps: rate(client.done, t0, start),
        reloadRps: rate(client.done, start, start + wall),
        wall,
        ok: client.ok,
        failed: client.failed,
        retried: client.retried,
      };
    } finally {
      await client.stop();
      await server.stop();
    }
  },
  summarize(byStrategy) {
    return per(byStrategy, (ok) => ({
      steadyRps: summary(ok.map((r) => r.steadyRps)),
      reloadRps: summary(ok.map((r) => r.reloadRps)),
      wall: summary(ok.map((r) => r.wall)),
      ok: ok.reduce((a, r) => a + r.ok, 0),
      failed: ok.reduce((a, r) => a + r.failed, 0),
      retried: ok.reduce((a, r) => a + r.retried, 0),
    }));
  },
  table(r, { label, broke, cell }) {
    return {
      title: 'HTTP/2 (h2c): 16 streams in flight on one session, steady, then a rolling reload',
      columns: [
        'strategy',
        'steady streams/s',
        'streams/s during the reload',
        'reload() wall ms',
        'streams ok',
        'failed',
        'refused under GOAWAY (retried)',
      ],
      rows: Object.entries(r).map(([s, o]) => [
        label(s, o) + broke(o),
        cell(o.steadyRps),
        cell(o.reloadRps),
        cell(o.wall),
        o.ok,
        o.failed,
        o.retried,
      ]),
      note:
        'a draining worker sends GOAWAY to its sessions; the client opens its next streams on a new session (a live worker); ' +
        'a stream refused under GOAWAY is retried, as RFC 9113 allows; counts: all runs.',
    };
  },
  brief: (r) =>
    `${r.outcome}, steady ${Math.round(r.steadyRps)} streams/s, during the reload ${Math.round(r.reloadRps)}, failed ${r.failed}, retried ${r.retried}`,
};

function per(byStrategy, f) {
  const out = {};
  for (const [s, runs] of Object.entries(byStrategy)) {
    const ok = runs.filter((r) => r && !r.error);
    out[s] = {
      active: ok[0]?.active,
      runs: runs.length,
      failedRuns: runs.filter((r) => r && r.error).map((r) => r.error),
      ...f(ok),
    };
  }
  return out;
}

function addCodes(list) {
  const out = {};
  for (const c of list) for (const [k, v] of Object.entries(c)) out[k] = (out[k] || 0) + v;
  return out;
}

module.exports = { websocket, http2: h2 };
