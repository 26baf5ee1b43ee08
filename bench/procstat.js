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

/**
 * The machine's CPU time so far, from the first line of /proc/stat, in ticks:
 * all of it and the steal (what the hypervisor gave other guests while this
 * one had work); null where there is no /proc/stat.
 */
function machineTicks() {
  try {
    const f = fs.readFileSync('/proc/stat', 'utf8').split('\n', 1)[0].trim().split(/\s+/).slice(1).map(Number);
    // user nice system idle iowait irq softirq steal (guest time is counted in user already)
    const all = f.slice(0, 8).reduce((a, b) => a + (b || 0), 0);
    return { all, steal: f[7] || 0 };
  } catch {
    return null;
  }
}

/** The share of the machine's CPU time stolen by the hypervisor between two machineTicks(), or null. */
function stealShare(a, b) {
  if (!a || !b || b.all <= a.all) return null;
  return (b.steal - a.steal) / (b.all - a.all);
}

module.exports = { cpuSeconds, reapedSeconds, snapshot, diff, machineTicks, stealShare };
