'use strict';
// The figures as tables: one model, rendered for the terminal here and as HTML in html.js.
// A cell shows the median, and (min-max) when there was more than one run.

function num(x, d = 0) {
  if (x == null || !Number.isFinite(x)) return 'n/a';
  return x.toLocaleString('en-US', { minimumFractionDigits: d, maximumFractionDigits: d });
}

function cell(s, d = 0, unit = '') {
  if (!s) return 'n/a';
  const m = `${num(s.median, d)}${unit}`;
  return s.n > 1 ? `${m} (${num(s.min, d)}-${num(s.max, d)})` : m;
}

/** Back to 90%: the median of every run (one not back counted as the longest), the range of those back. */
function backCell(o) {
  const m = o.recoverMedian == null ? 'not back' : num(o.recoverMedian, 0);
  const r = o.recoverMs && o.recoverMs.n > 1 ? ` (${num(o.recoverMs.min, 0)}-${num(o.recoverMs.max, 0)})` : '';
  return m + r + (o.notRecovered ? `, ${o.notRecovered} run(s) not back within the window` : '');
}

function kinds(errors) {
  const e = Object.entries(errors || {}).filter(([, n]) => n);
  return e.length ? e.map(([k, n]) => `${k}: ${n}`).join(', ') : '';
}

function failures(total, errors) {
  const k = kinds(errors);
  return k ? `${total} (${k})` : `${total}`;
}

/** p50 / p99 / max latency (ms) cells of a scenario's requests during the event. */
function latency(o) {
  return o.latP50 ? `${cell(o.latP50, 1)} / ${cell(o.latP99, 1)} / ${cell(o.latMax, 1)}` : 'n/a';
}

function broke(o) {
  return o.failedRuns && o.failedRuns.length ? ` [${o.failedRuns.length} run(s) broke: ${o.failedRuns[0]}]` : '';
}

function label(s, o) {
  return o.active && o.active !== s ? `${s} (ran as ${o.active})` : s;
}

function steadyTables(st) {
  const tables = [];
  for (const mode of ['keepalive', 'close']) {
    const ka = mode === 'keepalive';
    const columns = [
      'strategy',
      'req/s',
      'vs round-robin',
      ka ? 'vs best' : 'vs no-master ref.',
      'p50 ms',
      'p99 ms',
      'p99 vs ref.',
      'share %',
      'master CPU',
      'workers CPU',
      'server CPU us/req',
      'CPU/req vs ref.',
      'loader CPU',
      'errors',
    ];
    const rows = Object.entries(st).map(([s, o]) => {
      const m = o[mode];
      return [
        label(s, o) + broke(o),
        cell(m.rps),
        cell(m.vsRoundRobin, 2, 'x'),
        cell(ka ? m.vsBest : o.close.vsReference, 2, 'x'),
        cell(m.p50, 2),
        cell(m.p99, 2),
        cell(m.p99VsReference, 2, 'x'),
        (m.shares.length ? m.shares.join('/') : 'n/a') +
          (m.replaced ? ` (${m.replaced} worker(s) replaced during the load)` : ''),
        m.masterCpu ? cell(m.masterCpu, 2) : '-',
        cell(m.workersCpu, 2),
        cell(m.cpuPerRequest, 1),
        cell(m.cpuVsReference, 2, 'x'),
        cell(m.loaderCpu, 2),
        failures(m.errorCount, m.errors),
      ];
    });
    tables.push({
      title: ka ? 'Steady load, keep-alive' : 'Steady load, a new connection per request (the accept path)',
      columns,
      rows,
      note: "CPU in cores (1.00 = one core busy); server CPU us/req: master and workers' CPU time per response (it holds on a busy machine where req/s does not); share: each worker's % of the responses, by the pid in the body.",
    });
  }
  return tables;
}

function recycleTable(r) {
  return {
    title: 'Recycle one worker under keep-alive load (ms)',
    columns: [
      'strategy',
      'replacement',
      'trigger to forked',
      'forked to listening',
      'trigger to listening',
      'bare fork to listening',
      'over bare fork',
      'trigger to old gone',
      'replacement: loaded / listening',
      'bare: loaded / listening',
      'latency p50 / p99 / max',
      'failed requests',
    ],
    rows: Object.entries(r).map(([s, o]) => [
      label(s, o) + broke(o),
      (o.replacements || []).join(',') || '-',
      cell(o.triggerToForked, 1),
      cell(o.forkedToListening, 1),
      cell(o.triggerToListening, 1),
      cell(o.bareFork, 1),
      cell(o.overBare, 1),
      cell(o.triggerToGone, 1),
      `${cell(o.bootLoaded)} / ${cell(o.bootListening)}`,
      `${cell(o.bareLoaded)} / ${cell(o.bareListening)}`,
      latency(o),
      failures(o.failedTotal, o.errors),
    ]),
    note:
      'bare fork: child_process.fork() of the same app without cluster2, under the same load, just before the trigger. ' +
      'replacement: spare (cluster2\'s default: a process booted ahead, handed the slot; "forked" is that moment) or fork (--no-spare, or PM2). ' +
      "loaded / listening: when the code (cluster2 and the app) was loaded and when the server listened: for the replacement from the start of the app's code " +
      '(performance.now()), for the bare fork from the start of its process (a bare fork starts Node first). ' +
      'latency: of the requests sent from the trigger to the old worker gone.',
  };
}

function reloadTable(r) {
  return {
    title: 'Rolling reload of every worker under keep-alive load',
    columns: [
      'strategy',
      'reload() wall ms',
      'last old worker gone ms',
      'dip %',
      'lowest req/100ms',
      'baseline req/100ms',
      'requests lost to the dip',
      'back to 90% ms',
      'latency p50 / p99 / max',
      'failed requests',
      'replaced',
    ],
    rows: Object.entries(r).map(([s, o]) => [
      (s === 'reference' ? 'reference: reconnect only (the control)' : label(s, o)) + broke(o),
      cell(o.wall),
      cell(o.allOldGone),
      cell(o.dipPct),
      cell(o.low),
      cell(o.baseline),
      cell(o.lost),
      backCell(o),
      latency(o),
      failures(o.failedTotal, o.errors),
      [...new Set(o.replaced)].join(',') +
        (o.outcomes.some((x) => x !== 'ok') ? ` ${o.outcomes.find((x) => x !== 'ok')}` : ''),
    ]),
    note:
      'wall: c.reload() called to resolved (every replacement listening); the dip: the lowest 100 ms slot against the median of the slots before; ' +
      "back to 90%: from the reload's start until the requests per 100 ms are at 90% of that median and hold it for 500 ms, " +
      'the median of every run (one not back within the window counted as the longest), the range of those back; ' +
      "latency: of the requests sent from the reload's start to the last old worker gone. " +
      'The control: the no-master processes, every connection closed and made anew at once and nothing replaced; ' +
      'what the reconnecting alone costs on this machine with this client.',
  };
}

function upgradeTable(r) {
  return {
    title: 'Upgrade of the master (a new master inherits the sockets) under keep-alive load',
    columns: [
      'strategy',
      'upgrade() to new master up ms',
      'last old worker gone ms',
      'old master retired ms',
      'dip %',
      'lowest req/100ms',
      'baseline req/100ms',
      'failed requests',
    ],
    rows: Object.entries(r).map(([s, o]) => [
      label(s, o) + broke(o),
      cell(o.wall),
      cell(o.allOldGone),
      cell(o.oldMasterRetired),
      cell(o.dipPct),
      cell(o.low),
      cell(o.baseline),
      failures(o.failedTotal, o.errors) +
        (o.outcomes.some((x) => x !== 'ok') ? ` ${o.outcomes.find((x) => x !== 'ok')}` : ''),
    ]),
    note: 'wall: c.upgrade() called to resolved (the new master and all its workers up); the old master then drains its workers and exits.',
  };
}

function shutdownTable(r) {
  return {
    title: 'Graceful shutdown (SIGTERM) with 200 ms requests in flight',
    columns: [
      'strategy',
      'signal to master exit ms',
      'last in-flight answered to exit ms',
      'exit code',
      'in flight at signal',
      'in-flight failed',
      'sent after the signal: ok / failed',
      'workers left',
    ],
    rows: Object.entries(r).map(([s, o]) => [
      label(s, o) + broke(o),
      cell(o.signalToExit),
      cell(o.lastInflightToExit),
      o.exitCodes.join(','),
      cell(o.inflight),
      failures(o.failedTotal, o.errors),
      `${o.afterSignalOk} / ${failures(
        Object.values(o.afterSignal).reduce((a, b) => a + b, 0),
        o.afterSignal,
      )}`,
      cell(o.leftBehind),
    ]),
    note:
      'requests sent after the signal meet closed listeners (ECONNREFUSED): expected, listed apart from the in-flight ones. ' +
      'A negative "last in-flight answered to exit": the client read its last answer after the master had exited (the client\'s own lag).',
  };
}

function portBusyTable(r) {
  return {
    title: 'Port already taken',
    columns: ['strategy', 'time to exit ms', 'exit code', 'first line on stderr'],
    rows: Object.entries(r).map(([s, o]) => [
      label(s, o) + broke(o),
      o.stuck ? `did not exit within 10 s (${o.stuck} run(s))` : cell(o.timeToExit),
      o.exitCodes.join(','),
      o.message,
    ]),
  };
}

function sizesTable(r) {
  const rows = [];
  for (const [s, o] of Object.entries(r)) {
    for (const [n, z] of Object.entries(o.bySize)) {
      rows.push([
        `${s}${broke(o)}`,
        n,
        cell(z.start),
        `${cell(z.reload)} (${z.concurrency} at once)${z.outcomes.some((x) => x !== 'ok') ? ` ${z.outcomes.find((x) => x !== 'ok')}` : ''}`,
        failures(z.failedTotal, z.errors),
        `${cell(z.shutdown)} (exit ${z.exitCodes.join(',')})`,
        cell(z.idleCpu, 3),
        cell(z.reloadCpu, 2),
        `${cell(z.rss, 1)} / ${cell(z.rssPeak, 1)}`,
      ]);
    }
  }
  return {
    title: 'Start, reload and shutdown by number of workers',
    columns: [
      'strategy',
      'workers',
      'start to all listening ms',
      'reload under load ms',
      'failed requests',
      'shutdown (SIGTERM to exit) ms',
      'master CPU idle',
      'master CPU during reload',
      'master RSS MB: after start / peak',
    ],
    rows,
    note: 'CPU in cores (1.00 = one core busy); idle: over 1 s once the workers and the spare are up. The reload runs under the keep-alive load of the other scenarios; the shutdown without load.',
  };
}

function shutdownBurstTable(r) {
  return {
    title: `Shutdown (SIGTERM) with ${require('./shutdown-burst').BURST} new connections fired at the signal`,
    columns: ['strategy', 'answered', 'refused', 'reset', 'signal to master exit ms', 'exit code'],
    rows: Object.entries(r).map(([s, o]) => [
      label(s, o) + broke(o),
      cell(o.answered),
      cell(o.refused),
      failures(o.failedTotal, o.errors),
      cell(o.signalToExit),
      o.exitCodes.join(','),
    ]),
    note:
      'refused (ECONNREFUSED): the connection arrived once the listeners stopped taking handshakes; the client knows nothing was sent. ' +
      'reset (ECONNRESET, socket hang up; the total over the runs): the kernel had completed the connection, then it was dropped. Target: 0 reset.',
  };
}

function targetsTable(targets) {
  return {
    title: 'Targets',
    columns: ['measures', 'target', 'strategy', 'measured', 'result', 'cause of a miss'],
    rows: targets.map((t) => [
      t.measures,
      t.target,
      t.strategy,
      t.measured,
      t.pass === null ? 'not measured' : t.pass ? 'MET' : 'MISSED',
      t.cause || '',
    ]),
  };
}

const LONG_LIVED = require('./long-lived');

function tables(S, targets) {
  const out = [];
  if (S.steady) out.push(...steadyTables(S.steady));
  if (S.recycle) out.push(recycleTable(S.recycle));
  if (S.reload) out.push(reloadTable(S.reload));
  if (S.shutdown) out.push(shutdownTable(S.shutdown));
  if (S.upgrade) out.push(upgradeTable(S.upgrade));
  if (S['port-busy']) out.push(portBusyTable(S['port-busy']));
  if (S.sizes) out.push(sizesTable(S.sizes));
  if (S['shutdown-burst']) out.push(shutdownBurstTable(S['shutdown-burst']));
  for (const m of Object.values(LONG_LIVED)) if (S[m.name]) out.push(m.table(S[m.name], { label, broke, cell }));
  if (targets.length) out.push(targetsTable(targets));
  return out;
}

function renderText(t) {
  const all = [t.columns, ...t.rows];
  const w = t.columns.map((_, i) => Math.max(...all.map((r) => String(r[i] ?? '').length)));
  const line = (r) => `| ${r.map((c, i) => String(c ?? '').padEnd(w[i])).join(' | ')} |`;
  const sep = `|${w.map((x) => '-'.repeat(x + 2)).join('|')}|`;
  const out = [`\n${t.title}`, line(t.columns), sep, ...t.rows.map(line)];
  if (t.note) out.push(t.note);
  return out.join('\n');
}

module.exports = { tables, renderText, num };
