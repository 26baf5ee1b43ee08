'use strict';
// CPU time of processes, read from /proc (Linux): to show where the cores went
// during a load (the master in round-robin, the load generator itself).
const fs = require('node:fs');

const TICKS = 100; // USER_HZ: 100 on every Linux that Node runs on

/**
 * The sum of two fields of /proc/<pid>/stat, counted after the command name, as
 * seconds; null when the process is gone.
 */
function statSeconds(pid, i, j) {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(f[i]) + Number(f[j])) / TICKS;
  } catch {
    return null;
  }
}

/** CPU seconds (user + system) the process has used so far, or null when it is gone. */
function cpuSeconds(pid) {
  return statSeconds(pid, 11, 12); // utime, stime
}

/**
 * CPU seconds (user + system) of the process's children that exited and were
 * waited for, or null when it is gone. A worker replaced during a load ends up
 * here, in its master's figure.
 */
function reapedSeconds(pid) {
  return statSeconds(pid, 13, 14); // cutime, cstime
}

/** Snapshot several pids; diff two snapshots into CPU seconds per pid. */
function snapshot(pids) {
  const s = {};
  for (const pid of pids) s[pid] = cpuSeconds(pid);
  return s;
}

function diff(a, b) {
  const d = {};
  for (const pid of Object.keys(b)) {
    if (a[pid] != null && b[pid] != null) d[pid] = Math.round((b[pid] - a[pid]) * 100) / 100;
  }
  return d;
}

module.exports = { cpuSeconds, reapedSeconds, snapshot, diff };
