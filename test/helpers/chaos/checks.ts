// The invariants, checked after each step once the cluster had a bounded time to settle, and
// after the ending: one serving master with the model's worker count and ECV state, pid files
// and `cluster2 status` true, reloads and upgrades carried out, sticky sessions kept, every
// operation's requester told the truth; after an ending, the documented exit code, no process
// left, the ports free, no stale pid file.
import * as fs from 'node:fs';
import { alive, until } from '../cluster';
import { run } from '../cli';
import { askStatus, get, PROBE_ADDRESSES, type Status } from './ask';
import { filesIn, pidFiles, portFree, tagged } from './procs';
import { ENDING_WORDS, type Model, type OpRecord } from './model';
import type { Ctx } from './ops';
import { GRACEFUL_MS } from './scenario';
import type { Ports } from './started';

/** How long the cluster may take to settle after a step (a reload of 4 workers, an upgrade, on 2 busy cores). */
export const SETTLE_MS = 30_000;

export type Report = (invariant: string, detail: string) => void;

const fmtTime = (ctx: Ctx, t: number) => `+${t - ctx.p.startedAt}ms`;

/** Live master pid files. */
function masters(ctx: Ctx): number[] {
  return pidFiles(ctx.pids, 'master').filter(alive);
}

/** Why the cluster is not (yet) as the model says, or the serving master's status when it is. */
async function unsettled(ctx: Ctx, m: Model, seen: { st?: Status }): Promise<string | Status> {
  if (ctx.p.exit) return `the started process ${ctx.p.pid} exited (${ctx.p.exit.code ?? ctx.p.exit.signal})`;
  const ms = masters(ctx);
  if (ms.length !== 1) return `${ms.length} masters have a pid file (${ms.join(', ')}); one serving master expected`;
  const st = await askStatus(ctx.pids, ms[0]);
  if (st instanceof Error) return `master ${ms[0]} did not answer its status: ${st.message}`;
  seen.st = st;
  if (st.state !== 'running') return `master ${st.pid} is ${st.state}`;
  if (st.size !== m.size) return `master ${st.pid} has size ${st.size}; the model says ${m.size}`;
  // A worker just killed is listed until the master has seen its exit: not settled yet.
  const gone = st.workers.filter((w) => !alive(w.pid));
  if (gone.length) return `master ${st.pid} lists workers that are gone: ${gone.map((w) => w.pid).join(', ')}`;
  const listening = st.workers.filter((w) => w.state === 'listening');
  if (st.workers.length !== m.size || listening.length !== m.size)
    return `master ${st.pid}: ${listening.length} of ${st.workers.length} workers listen; ${m.size} expected (${st.workers.map((w) => `${w.pid} ${w.state}`).join(', ')})`;
  if (st.ecv.enabled !== m.ecv)
    return `master ${st.pid}: ECV ${st.ecv.enabled ? 'enabled' : 'disabled'}; the model says ${m.ecv ? 'enabled' : 'disabled'}`;
  if (m.upgradeAt !== undefined && st.started < m.upgradeAt)
    return `the serving master ${st.pid} started at ${fmtTime(ctx, st.started)}, before the upgrade asked at ${fmtTime(ctx, m.upgradeAt)}`;
  // A reload that failed, saying so, because the test killed one of its replacements need not be carried out.
  if (
    m.reloadAt !== undefined &&
    ctx.p.events.some((e) => e.ev === 'reloadFailed' && e.t >= m.reloadAt! && m.failedByTest(e.msg))
  )
    m.reloadAt = undefined;
  if (m.reloadAt !== undefined) {
    const old = st.workers.filter((w) => w.started < m.reloadAt!);
    if (old.length)
      return `worker(s) ${old.map((w) => `${w.pid} (started ${fmtTime(ctx, w.started)})`).join(', ')} still serve after the reload asked at ${fmtTime(ctx, m.reloadAt)}`;
  }
  const known = new Set([...st.workers.map((w) => w.pid), ...(st.spare ? [st.spare.pid] : [])]);
  const stray = tagged(ctx.tag).filter((p) => p.role === 'worker' && !known.has(p.pid));
  if (stray.length)
    return `worker process(es) ${stray.map((p) => p.pid).join(', ')} alive, not among master ${st.pid}'s workers or spare`;
  const files = pidFiles(ctx.pids, 'worker');
  const pids = st.workers.map((w) => w.pid).sort((a, b) => a - b);
  if (files.join() !== pids.join()) return `worker pid files ${files.join(', ')}; the workers are ${pids.join(', ')}`;
  return st;
}

/**
 * Wait (polling, with a deadline) until the cluster is as the model says; report it when it
 * never is, and take the cluster as it is from then on (the next steps check what they change,
 * not this step's miss again).
 */
export async function settle(ctx: Ctx, m: Model, report: Report): Promise<Status | undefined> {
  const deadline = Date.now() + SETTLE_MS;
  let last: string | Status;
  const seen: { st?: Status } = {};
  for (;;) {
    last = await unsettled(ctx, m, seen);
    if (typeof last !== 'string') return last;
    if (ctx.p.exit || Date.now() > deadline) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  if (!ctx.p.exit) report('settles as the model says', `not within ${SETTLE_MS} ms: ${last}`);
  m.reloadAt = m.upgradeAt = undefined;
  if (seen.st) {
    m.size = seen.st.size;
    m.ecv = seen.st.ecv.enabled;
  }
  return undefined;
}

/** The checks on a settled cluster. */
export async function checkSettled(ctx: Ctx, m: Model, st: Status, ports: Ports, report: Report): Promise<void> {
  const tls = ctx.config.proto === 'tls';
  // `cluster2 status --json` tells the same as the master's control socket.
  const r = await run(['status', '--pids', ctx.pids, '--json'], { timeout: 20_000 });
  let listed: any[] = [];
  try {
    listed = JSON.parse(r.stdout);
  } catch {
    report('cluster2 status is true', `exit ${r.code}, not JSON: ${r.stdout.slice(0, 200)} ${r.stderr.slice(0, 200)}`);
  }
  if (listed.length) {
    const pids = listed.map((x) => x.pid);
    if (pids.length !== 1 || pids[0] !== st.pid)
      report('cluster2 status is true', `lists masters ${pids.join(', ')}; ${st.pid} serves`);
    const s = listed.find((x) => x.pid === st.pid);
    if (s && (s.state !== 'running' || s.workers.length !== m.size))
      report('cluster2 status is true', `says ${s.state}, ${s.workers.length} workers; ${m.size} running expected`);
  }
  // ECV, on the app port and on the monitor's.
  // From every probe address: every worker must answer the same (sticky or the kernel's hash picks one per connection).
  const want = m.ecv ? 200 : 400;
  const ecvs = await Promise.all(
    PROBE_ADDRESSES.map((a) => get(ctx.port, { path: '/ecv', tls, timeout: 5000, localAddress: a })),
  );
  const wrong = ecvs.filter((r) => r instanceof Error || r.status !== want);
  if (wrong.length)
    report(
      'ECV is the state asked for',
      `GET /ecv on the app port: ${wrong
        .map((r) => (r instanceof Error ? (r.code ?? r.message) : `${r.status} from worker ${r.pid ?? '?'}`))
        .join(', ')}; ${want} expected (${ecvs.length - wrong.length} of ${ecvs.length} right)`,
    );
  if (ports.monitor) {
    const mon = await get(ports.monitor, { path: '/ecv', timeout: 5000 });
    if (mon instanceof Error || mon.status !== want)
      report(
        'ECV is the state asked for',
        `GET /ecv on the monitor: ${mon instanceof Error ? (mon.code ?? mon.message) : mon.status}; ${want} expected`,
      );
  }
  if (ports.metrics) {
    const mx = await get(ports.metrics, { path: '/metrics', timeout: 5000 });
    if (mx instanceof Error || mx.status !== 200)
      report('metrics are served', `GET /metrics: ${mx instanceof Error ? (mx.code ?? mx.message) : mx.status}`);
  }
  if (ports.pidFile) {
    let text: string;
    try {
      text = fs.readFileSync(ports.pidFile, 'utf8').trim();
    } catch (e) {
      text = (e as NodeJS.ErrnoException).code ?? 'unreadable';
    }
    if (text !== String(ctx.p.pid))
      report(
        'the pid file holds the started pid',
        `${ports.pidFile} holds ${JSON.stringify(text)}; the started process is ${ctx.p.pid}`,
      );
  }
  // What the workers started lives in their process groups, and only there.
  // (A worker's group is ended as it exits: give what it held a moment to go.)
  const workers = new Set(st.workers.map((w) => w.pid));
  const childStrays = () => tagged(ctx.tag).filter((p) => p.role === 'child' && !workers.has(p.pgrp));
  const strays = await until(() => childStrays().length === 0, 2000).then(() => [], childStrays);
  if (strays.length) {
    // What became of each group's leader: its exit as the master told it, and whether the test killed it.
    const leader = (pid: number) => {
      const died = ctx.p.events.find(
        (e) => e.ev === 'died' && (e.args[0] === pid || (e.args[0] as any)?.worker === pid),
      );
      const killed = m.records.some((r) => r.worker === pid) ? ', killed by the test' : '';
      // What the leader is now (a worker the master does not list: a spare, or one it dropped?).
      let now = 'gone';
      try {
        const st = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
        const env = fs.readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0');
        const slot = env.find((e) => e.startsWith('CLUSTER2_SLOT='));
        now = `state ${st.slice(st.lastIndexOf(')') + 2, st.lastIndexOf(')') + 3)}, ${slot ?? 'no slot (a spare)'}`;
      } catch {
        /* gone */
      }
      return `${died ? `worker ${pid} died: ${died.msg}` : `no 'died' seen for worker ${pid}`}${killed}; now ${now}; listed: ${[...workers].join(' ')}; events: ${ctx.p.events.map((e) => `${e.ev}:${JSON.stringify(e.args).slice(0, 40)}`).join(' ')}`;
    };
    report(
      'no orphans',
      `worker children ${strays.map((p) => `${p.pid} (group ${p.pgrp}, parent ${p.ppid}; ${leader(p.pgrp)})`).join(', ')} outlive their workers`,
    );
  }
  if (ctx.config.sticky) await checkSticky(ctx, report);
}

/** sticky: 'ip': every connection from one address reaches one worker. */
async function checkSticky(ctx: Ctx, report: Report): Promise<void> {
  for (const a of PROBE_ADDRESSES.slice(0, 4)) {
    const seen = new Set<number | undefined>();
    for (let i = 0; i < 3; i++) {
      const r = await get(ctx.port, { tls: ctx.config.proto === 'tls', localAddress: a, timeout: 5000 });
      seen.add(r instanceof Error ? undefined : r.pid);
    }
    if (seen.size !== 1 || seen.has(undefined))
      report(
        'sticky sessions hold',
        `3 connections from ${a} reached ${[...seen].map((p) => p ?? 'an error').join(', ')}`,
      );
  }
}

/** What an operation's requester was told, against what the model expects. */
export function judgeOutcome(ctx: Ctx, m: Model, rec: OpRecord): string | undefined {
  if (rec.note) return rec.note;
  const out = rec.outcome;
  if (!out) return undefined;
  const text = `${out.stderr ?? ''}${out.message ?? ''}`.trim();
  const overlapped = m.ending !== undefined && m.ending.at <= (rec.done ?? Infinity);
  const cliOk = out.code === 0;
  const apiOk = out.ok === true;
  const isCli = out.code !== undefined;
  const isSignal = out.sent !== undefined;
  const told = (re: RegExp) => re.test(text);
  const via = rec.op && 'via' in rec.op ? rec.op.via : undefined;
  const saidOnStderr = (re: RegExp) =>
    ctx.p.stderr.some((l) => l.t >= rec.at && re.test(l.text)) ||
    ctx.p.events.some((e) => e.t >= rec.at && ['reloadFailed', 'upgradeFailed'].includes(e.ev) && re.test(e.msg));
  switch (rec.expect) {
    case 'accepted': {
      // (While ending, the process may be gone already: nothing to tell.)
      if (isSignal)
        return out.sent || rec.phase === 'after'
          ? undefined
          : `the signal found no process ${rec.target} (the started process gone)`;
      if (isCli ? cliOk : apiOk) return undefined;
      if (rec.phase === 'ending' && !isCli && /exited before it answered/.test(text)) return undefined;
      if (overlapped && told(ENDING_WORDS) && !told(/keep serving/)) return undefined;
      if (rec.op?.op === 'scale' && told(/meanwhile/)) return undefined;
      if (rec.op?.op === 'reload' && m.failedByTest(text)) return undefined;
      return `${isCli ? `exit ${out.code}` : 'rejected'}: ${text.slice(0, 300)}`;
    }
    case 'refused':
    case 'fails': {
      const re = rec.phase === 'after' ? ENDING_WORDS : rec.expect === 'fails' ? /fail/i : /upgrade/i;
      if (isSignal) {
        if (!out.sent) return undefined;
        const exited = ctx.p.exit && ctx.p.exit.t - rec.at < 500;
        if (saidOnStderr(re) || exited) return undefined;
        return 'refused or failed, and nothing on stderr says so';
      }
      if (isCli) {
        if (out.code === 0)
          return `exit 0 (accepted); ${rec.phase === 'after' ? 'refused while ending' : 'a failure'} expected: ${text.slice(0, 200)}`;
        if (!/^cluster2: /m.test(text) || !told(re))
          return `exit ${out.code} without saying why (${re}): ${JSON.stringify(text.slice(0, 300))}`;
        return undefined;
      }
      if (apiOk)
        return `${via === 'http' ? 'HTTP' : 'the API'} accepted it (${text.slice(0, 100)}); ${rec.phase === 'after' ? 'refused while ending' : 'a failure'} expected`;
      if (via === 'http' && /ECONNREFUSED/.test(text)) return undefined;
      if (/exited before it answered|stdin closed/.test(text)) return undefined;
      if (!text) return 'rejected without a message';
      if (!told(re)) return `rejected, but the message does not say why (${re}): ${text.slice(0, 200)}`;
      return undefined;
    }
    default:
      return undefined;
  }
}

/** After the ending: the started process's exit code, no process left, ports free, no stale pid file. */
export async function checkEnded(
  ctx: Ctx,
  m: Model,
  ending: OpRecord,
  ports: Ports,
  endingMs: number,
  report: Report,
): Promise<void> {
  await Promise.race([ctx.p.exited, new Promise((r) => setTimeout(r, endingMs))]);
  const kind = m.ending!.kind;
  if (!ctx.p.exit)
    report('the service ends', `the started process ${ctx.p.pid} still runs ${endingMs} ms after ${kind}`);
  else if (ctx.p.exit.t < ending.at) {
    report(
      'the started process lives as long as the service',
      `it exited (${ctx.p.exit.code ?? ctx.p.exit.signal}) at +${ctx.p.exit.t - ctx.p.startedAt}ms, before ${kind} was asked`,
    );
  } else {
    const { code, signal } = ctx.p.exit;
    const killedP = kind === 'SIGKILL started' || (kind === 'SIGKILL serving' && ending.target === ctx.p.pid);
    const ok = killedP
      ? signal === 'SIGKILL' || code === 137
      : kind === 'SIGKILL serving'
        ? code === 137 || signal === 'SIGKILL'
        : code === 0;
    if (!ok)
      report(
        'the documented exit code',
        `the started process exited ${signal ?? code} after ${kind}; ${killedP ? 'SIGKILL' : kind === 'SIGKILL serving' ? '137 (128 + SIGKILL of the serving master)' : '0'} expected`,
      );
  }
  // Every process the cluster started ends: the masters, the workers, the spare and what the workers started.
  const left = await until(() => tagged(ctx.tag).length === 0, GRACEFUL_MS + 4000 + ctx.config.drainDelay).then(
    () => [],
    () => tagged(ctx.tag),
  );
  if (left.length)
    report(
      'no orphans',
      `after ${kind}: ${left.map((p) => `${p.pid} (${p.role}${p.stopped ? ', stopped' : ''})`).join(', ')} still alive`,
    );
  for (const [name, port] of [
    ['app', ctx.port],
    ['monitor', ports.monitor],
    ['metrics', ports.metrics],
  ] as const) {
    if (!port) continue;
    const free = await until(() => portFree(port), 3000).then(
      () => true,
      () => false,
    );
    if (!free) report('the ports are free', `the ${name} port ${port} is still bound after ${kind}`);
  }
  // A SIGKILLed process cannot remove its own files, nor those of a worker whose exit it had not
  // seen yet (the next master to start or end in the directory sweeps them); anything else must leave none.
  const killed = new Set(m.masterKilled && ending.target ? [ending.target] : []);
  const stale = filesIn(ctx.pids).filter((f) => {
    const pid = Number(/\.(\d+)\.(?:pid|sock)$/.exec(f)?.[1]);
    return !(killed.has(pid) ? f.startsWith('master.') : killed.size > 0 && f.startsWith('worker.') && !alive(pid));
  });
  if (stale.length && !left.length) report('no stale pid file', `left in the pids directory: ${stale.join(', ')}`);
  if (ports.pidFile && fs.existsSync(ports.pidFile) && !killed.has(ctx.p.pid) && !left.length)
    report('no stale pid file', `${ports.pidFile} is left after ${kind}`);
}
