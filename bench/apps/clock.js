'use strict';
// One clock for every process of a bench run: CLOCK_MONOTONIC in ms (fractional),
// the same in the runner, the masters, the workers and the load clients.
// Bun's process.hrtime counts from its own process's start instead: there the wall clock
// (performance.timeOrigin + performance.now()) is mapped onto CLOCK_MONOTONIC by the
// runner's offset between the two, BENCH_CLOCK_OFFSET (bench/servers.js serverEnv).
const offset = process.versions.bun ? Number(process.env.BENCH_CLOCK_OFFSET) : NaN;

function now() {
  if (!Number.isNaN(offset)) return performance.timeOrigin + performance.now() - offset;
  return Number(process.hrtime.bigint()) / 1e6;
}

/** In a Node process: wall clock minus CLOCK_MONOTONIC, in ms, for BENCH_CLOCK_OFFSET. */
function clockOffset() {
  return performance.timeOrigin + performance.now() - Number(process.hrtime.bigint()) / 1e6;
}

module.exports = { now, clockOffset };
