import type { EventEmitter } from 'node:events';
import { safeText } from '../shared/safe-text';
import { MASTER_SIGNALS, type MasterStatus } from '../shared/protocol';

/**
 * What the `cluster2` command prints: one line per lifecycle event on stderr
 * (human-readable or JSON), and `cluster2 status`.
 */

type Text = (...args: any[]) => string;

function address(a: unknown): string {
  if (a && typeof a === 'object' && 'port' in a) {
    const { address: host, port, family } = a as { address: string; port: number; family: string };
    return family === 'IPv6' ? `[${host}]:${port}` : `${host}:${port}`;
  }
  return String(a);
}

/** Each logged event: names of its arguments (for JSON) and its human line. */
export const LOG_EVENTS: Record<string, { fields: string[]; text: Text }> = {
  strategy: { fields: ['strategy', 'port'], text: (s, p) => `strategy ${s}, port ${p}` },
  forked: { fields: ['worker'], text: (w) => `worker ${w} forked` },
  listening: { fields: ['worker', 'address'], text: (w, a) => `worker ${w} listening on ${address(a)}` },
  died: {
    fields: ['worker', 'code', 'signal'],
    text: (w, c, s) => `worker ${w} exited (${s ? `signal ${s}` : `code ${c}`})`,
  },
  recycled: { fields: ['worker', 'replacement', 'reason'], text: (o, n, r) => `worker ${o} replaced by ${n} (${r})` },
  warning: { fields: ['message'], text: (m) => String(m).replace(/^cluster2: /, 'warning: ') },
  ecv: { fields: ['enabled'], text: (e) => `ECV ${e ? 'enabled' : 'disabled'}` },
  ready: {
    fields: ['workers', 'port', 'strategy'],
    text: (n, p, s) => `ready: ${n} worker(s) listening on port ${p} (${s})`,
  },
  reloaded: {
    fields: ['workers'],
    text: (pairs: [number, number][]) => `reload finished: ${pairs.map(([o, n]) => `${o} -> ${n}`).join(', ')}`,
  },
  reloadFailed: { fields: ['message'], text: (m) => String(m).replace(/^cluster2: /, '') },
  upgrading: { fields: ['master', 'node'], text: (p, n) => `upgrade: starting new master ${p} (${n})` },
  upgraded: {
    fields: ['from', 'to'],
    text: (f, t) => `upgrade: master ${t} serves; master ${f} drains its workers`,
  },
  retired: { fields: ['from', 'to'], text: (f, t) => `upgrade: master ${f} retired; master ${t} serves` },
  keeping: {
    fields: ['master'],
    text: (p) => `keeping master ${p}: signals to this process are forwarded to it; it exits with its code`,
  },
  upgradeFailed: { fields: ['message'], text: (m) => String(m).replace(/^cluster2: /, '') },
  control: { fields: ['request'], text: (op) => `${op} requested over the control socket` },
  exit: { fields: ['code'], text: (c) => `master exiting with code ${c}` },
  ...Object.fromEntries(MASTER_SIGNALS.map((sig) => [sig, { fields: [], text: () => `received ${sig}` }])),
};

export type LogFormat = 'human' | 'json';

export type Level = 'info' | 'warn' | 'error';

/** warn: warnings, failed reloads, a worker that exited other than cleanly; error: a master exiting non-zero. */
export function levelOf(event: string, args: unknown[]): Level {
  if (event === 'warning' || event === 'reloadFailed') return 'warn';
  if (event === 'died') return args[1] === 0 && !args[2] ? 'info' : 'warn';
  if (event === 'exit') return args[0] === 0 ? 'info' : 'error';
  return 'info';
}

/** A function writing one line for an event and its arguments. */
export function eventLine(format: LogFormat, pid = process.pid): (event: string, args: unknown[]) => string {
  return (event, args) => {
    const spec = LOG_EVENTS[event] ?? { fields: [], text: () => event };
    const time = new Date().toISOString();
    if (format === 'json') {
      // level and msg: what log shippers (pino, bunyan, Loki, Datadog) read first.
      const o: Record<string, unknown> = { time, level: levelOf(event, args), pid, event, msg: spec.text(...args) };
      spec.fields.forEach((f, i) => {
        if (args[i] !== undefined) o[f] = args[i];
      });
      // JSON.stringify escapes C0 controls only; safeText's escapes are JSON's, so the line stays valid JSON.
      return `${safeText(JSON.stringify(o))}\n`;
    }
    // A warning or a failure quotes the app's text: escaped (lib/shared/safe-text.ts), one line.
    return `${time} cluster2[${pid}] ${safeText(spec.text(...args))}\n`;
  };
}

/**
 * Log every lifecycle event of the cluster to `write` (stderr), one line each.
 * @lazy required by cli/main.ts through `lazy.output()`
 */
export function logEvents(
  c: EventEmitter,
  format: LogFormat,
  write: (line: string) => void,
): (event: string, args: unknown[]) => void {
  const line = eventLine(format);
  const log = (event: string, args: unknown[]) => write(line(event, args));
  for (const event of Object.keys(LOG_EVENTS)) {
    if (event !== 'ready') c.on(event, (...args: unknown[]) => log(event, args));
  }
  return log;
}

/** 3723000 -> '1h02m', 65000 -> '1m05s', 4000 -> '4s'. */
export function duration(ms: number): string {
  const s = Math.max(0, Math.floor(ms / 1000));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  if (h >= 24) return `${Math.floor(h / 24)}d${String(h % 24).padStart(2, '0')}h`;
  if (h) return `${h}h${String(m).padStart(2, '0')}m`;
  if (m) return `${m}m${String(s % 60).padStart(2, '0')}s`;
  return `${s}s`;
}

function mb(bytes: number): string {
  return `${(bytes / 1024 / 1024).toFixed(1)}M`;
}

/**
 * `cluster2 status`, human-readable.
 * @lazy required by cli/main.ts through `lazy.output()`
 */
export function formatStatus(all: MasterStatus[], now = Date.now()): string {
  return (
    all
      .map((s) => {
        const listening = s.workers.filter((w) => w.state === 'listening').length;
        const head = [
          `master ${s.pid}`,
          s.state,
          `up ${duration(now - s.started)}`,
          `strategy ${s.strategy ?? '-'} (${s.implementation})`,
          `port ${s.port}`,
          `ECV ${s.ecv.enabled ? 'enabled' : 'disabled'} since ${new Date(s.ecv.since).toISOString()}`,
          `workers ${listening}/${s.size}`,
          `restarts ${s.restarts}`,
        ].join('  ');
        const rows = s.workers
          .slice()
          .sort((a, b) => a.slot - b.slot || a.started - b.started)
          .map((w) =>
            [
              `  worker ${w.pid}`,
              `slot ${w.slot}`,
              w.state,
              `up ${duration(now - w.started)}`,
              `connections ${w.connections}`,
              `open ${w.open}`,
              `requests ${w.requests}`,
              `rss ${mb(w.rss)}`,
            ].join('  '),
          );
        if (s.spare) rows.push(`  spare ${s.spare.pid}  ${s.spare.booted ? 'booted, waiting for a slot' : 'starting'}`);
        // Every line as text from another process: escaped (lib/shared/safe-text.ts).
        return [head, ...rows].map(safeText).join('\n');
      })
      .join('\n\n') + '\n'
  );
}
