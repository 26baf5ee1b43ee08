'use strict';
// One clock for every process of a bench run: CLOCK_MONOTONIC in ms (fractional),
// the same in the runner, the masters, the workers and the load clients.
function now() {
  return Number(process.hrtime.bigint()) / 1e6;
}
module.exports = { now };
