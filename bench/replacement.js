'use strict';
// Every worker replaced under keep-alive load: a rolling reload (bench/reload.js), an upgrade
// of the master (bench/upgrade.js), a peer's reload (bench/peer-pm2.js). One run: a closed-loop
// client warmed up, the replacement, a while to see throughput come back; and one set of
// figures: wall time, last old worker gone, failed requests by kind, the throughput dip and
// its recovery, the latency of the requests sent during the replacement.
const { startClient, sleep } = require('./closed-loop');
const { spareForked } = require('./servers');
const { summary, latencies } = require('./stats');

const SLOT_MS = 100;
/**
 * The baseline: the median of this many slots before the replacement. Over
 * 6 (600 ms) it moved by a third from one run to the next on 2 shared cores.
 */
const BASELINE_SLOTS = 10;

/** Baseline (median of the slots before), the lowest slot during, the dip in %, the requests lost. */
function dip(timeline, t0, from, to) {
  const k = Math.floor((from - t0) / SLOT_MS);
  const end = Math.floor((to - t0) / SLOT_MS) + 1;
  const before = timeline.slice(Math.max(1, k - BASELINE_SLOTS), k);
  const base = summary(before);
  if (!base) return { baseline: null, low: null, dipPct: null, lost: null };
  const during = timeline.slice(k, end + 1);
  const low = Math.min(...during);
  let lost = 0;
  for (const x of during) lost += Math.max(0, base.median - x);
  return { baseline: base.median, low, dipPct: Math.max(0, 100 * (1 - low / base.median)), lost: Math.round(lost) };
}

/** Throughput back to this share of its level before the reload. */
const RECOVERED = 0.9;
/** ...and staying there for this many slots: it is back. */
const HOLD_SLOTS = 5;

/**
 * ms from `from` until the requests per 100 ms are back to RECOVERED of
 * `baseline` and stay there for HOLD_SLOTS slots (500 ms); 0: never below;
 * null: not back within the window. Each slot is averaged with its
 * neighbours. Not "the end of the last slot below", as before: on 2 shared
 * cores the control (every connection made anew, nothing replaced) had a
 * run fall to 15-30% for 300 ms in its last slots with nothing happening,
 * and was counted "not back"; one noisy slot at the end of the window
 * decided the figure.
 */
function recovery(timeline, t0, from, baseline) {
  if (!baseline) return null;
  const k = Math.max(0, Math.floor((from - t0) / SLOT_MS));
  const around = (j) => {
    const w = timeline.slice(Math.max(0, j - 1), j + 2);
    return w.reduce((a, b) => a + b, 0) / w.length;
  };
  for (let j = k, held = 0; j < timeline.length; j++) {
    held = around(j) >= RECOVERED * baseline ? held + 1 : 0;
    if (held === HOLD_SLOTS) return Math.max(0, (j + 1 - HOLD_SLOTS) * SLOT_MS - (from - t0));
  }
  return null;
}

/**
 * The figures of a reload, for cluster2 and the peers alike: started at t0,
 * done at t1, the last old worker gone at lastGone; the dip measured up to dipEnd.
 */
function reloadFigures(r, olds, news, t0, t1, lastGone, dipEnd) {
  const d = dip(r.timeline, r.t0, t0, dipEnd);
  const lat = latencies(r.requests, t0, lastGone);
  return {
    wall: t1 - t0,
    allOldGone: lastGone - t0,
    replaced: olds.filter((p) => !news.includes(p)).length,
    workers: olds.length,
    ok: r.ok,
    opened: r.opened,
    failed: r.failed,
    errors: r.errors,
    ...d,
    recoverMs: recovery(r.timeline, r.t0, t0, d.baseline),
    latP50: lat.p50,
    latP99: lat.p99,
    latMax: lat.max,
    timeline: r.timeline,
    failTimeline: r.failTimeline,
    mark: { start: t0 - r.t0, end: t1 - r.t0, gone: lastGone - r.t0 },
  };
}

/**
 * @typedef {object} Replaced what a replacement reports, on the shared clock
 * @property {number} t0 it started
 * @property {number} t1 it was done (the call returned)
 * @property {number} lastGone the last old worker was gone
 * @property {number} [dipEnd] the dip is measured up to here (default: lastGone)
 * @property {object} [extra] more figures of the scenario, first in the result
 */

/**
 * Run `replace(olds)` against `server` (its workers `olds`) under the load of a closed-loop
 * client, then wait `o.settle` ms and return the figures (reloadFigures) after `extra`.
 * `o.spare`: first wait for a cluster2 server's spare; `o.record`: keep every request (the
 * latencies). The client and the server are stopped on every way out.
 * @param {{ port: number, workers: () => number[], stop: () => Promise<void> }} server
 * @param {{ connections: number, quick?: boolean, pin: { loader?: string[] }, spare?: boolean }} ctx
 * @param {{ settle: number, record?: boolean, spare?: boolean }} o
 * @param {(olds: number[], client: { reconnect: () => void }) => Promise<Replaced>} replace
 */
async function replaceUnderLoad(server, ctx, o, replace) {
  let client;
  try {
    if (o.spare) await spareForked(server, ctx);
    const olds = server.workers();
    client = await startClient({
      port: server.port,
      connections: ctx.connections,
      pin: ctx.pin.loader,
      warmup: ctx.quick ? 500 : 1000,
      record: !!o.record,
    });
    await sleep(ctx.quick ? 800 : 1000);
    const { t0, t1, lastGone, dipEnd = lastGone, extra } = await replace(olds, client);
    await sleep(o.settle);
    const r = await client.stop();
    client = null;
    return { ...extra, ...reloadFigures(r, olds, server.workers(), t0, t1, lastGone, dipEnd) };
  } finally {
    if (client) await client.stop().catch(() => {});
    await server.stop();
  }
}

module.exports = { replaceUnderLoad, reloadFigures, recovery, RECOVERED };
