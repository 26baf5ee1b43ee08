'use strict';
// Median with min and max over repeated runs; shares; small formatting helpers.

/** {median, min, max, n, runs} of the numbers (nulls left out), or null when there are none. */
function summary(values) {
  const v = values.filter((x) => typeof x === 'number' && Number.isFinite(x));
  if (v.length === 0) return null;
  const s = [...v].sort((a, b) => a - b);
  return { median: median(s), min: s[0], max: s[s.length - 1], n: s.length, runs: v };
}

/** The median of sorted numbers (the mean of the middle two when their count is even). */
function median(sorted) {
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

/** Add up {kind: n} maps. */
function addCounts(maps) {
  const out = {};
  for (const m of maps) for (const [k, n] of Object.entries(m || {})) out[k] = (out[k] || 0) + n;
  return out;
}

function total(m) {
  return Object.values(m || {}).reduce((a, b) => a + b, 0);
}

/** Each pid's share of the responses, in %, largest first. */
function shares(byPid) {
  const sum = total(byPid);
  if (!sum) return [];
  return Object.values(byPid)
    .sort((a, b) => b - a)
    .map((n) => Math.round((1000 * n) / sum) / 10);
}

/** The q-quantile (0..1) of sorted numbers (nearest rank). */
function quantile(sorted, q) {
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))];
}

/**
 * Latency (ms) of the requests the client recorded ([sent, answered, error])
 * that were sent from `from` to `to`, answered or failed: {p50, p99, max, n}, or nulls.
 */
function latencies(requests, from, to) {
  const d = (requests || [])
    .filter((q) => q[0] >= from && q[0] <= to)
    .map((q) => q[1] - q[0])
    .sort((a, b) => a - b);
  if (!d.length) return { p50: null, p99: null, max: null, n: 0 };
  const r = (x) => Math.round(x * 100) / 100;
  return { p50: r(quantile(d, 0.5)), p99: r(quantile(d, 0.99)), max: r(d[d.length - 1]), n: d.length };
}

module.exports = { summary, median, addCounts, total, shares, latencies };
