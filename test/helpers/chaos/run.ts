// One chaos sequence against a real cluster: start it (API or `cluster2 start`), run the load,
// fire the operations (each after its gap, the next one while it runs unless it waits),
// check the invariants after every step and after the ending, judge every failed request
// against the model, and clean up every process by pid, whatever happened.
import { execSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { tmpdir, until } from '../cluster';
import { askStatus } from './ask';
import { SETTLE_MS, checkEnded, checkSettled, judgeOutcome, settle, type Report } from './checks';
import { startLoad, type Failure, type Load, type LoadKind } from './load';
import { Model, type OpRecord, type Violation } from './model';
import { ENDING_MS, fire, fireEnding, type Ctx } from './ops';
import { freePort, killAll, signal, tagged } from './procs';
import { describe, effective, endingMoment, gapOf, gapOfEnding, momentOp, waits, type Scenario } from './scenario';
import { portOf, start, type Event, type Ports, type Started } from './started';
import { watchBlackHole, type Watch } from './watch';

export interface Result {
  scenario: Scenario;
  violations: Violation[];
  /** Responses served, per kind of load. */
  served: Partial<Record<LoadKind, number>>;
  failures: Failure[];
  ops: number;
  ms: number;
  /** The cells of the state x operation table (lib/master/lifecycle.ts DECIDE) the masters decided: "state op". */
  cells: string[];
}

/** The masters' decisions, from their CLUSTER2_TRACE_LIFECYCLE lines. */
function cellsOf(lines: { text: string }[]): string[] {
  const out = new Set<string>();
  for (const l of lines) {
    const m = /^cluster2-lifecycle: (\S+) (\S+) \S+$/.exec(l.text);
    if (m) out.add(`${m[1]} ${m[2]}`);
  }
  return [...out];
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The sequence cannot go on (reported already). */
class Abort extends Error {}

/** The sequences running now: their tag and started process, for killSequences. */
const running = new Map<string, number>();

/**
 * SIGKILL, at once, every process of the sequences still running: for a test's teardown and
 * the process's exit, when a sequence could not clean up after itself (a timeout killed it).
 */
export function killSequences(): void {
  for (const [tag, pid] of running) {
    for (const p of [pid, ...tagged(tag).map((x) => x.pid)]) signal(p, 'SIGKILL');
  }
  running.clear();
}
process.once('exit', killSequences);
const START_MS = 30_000;

export async function runSequence(sc: Scenario, log: (s: string) => void = () => {}): Promise<Result> {
  const t0 = Date.now();
  const dir = tmpdir('c2chaos-');
  const pids = path.join(dir, 'pids');
  const tag = randomBytes(6).toString('hex');
  const ports: Ports = {
    monitor: sc.config.monitor ? await freePort() : undefined,
    metrics: sc.config.metrics ? await freePort() : undefined,
    pidFile: sc.config.pidFile ? path.join(dir, 'service.pid') : undefined,
  };
  const model = new Model(sc.config);
  const violations: Violation[] = [];
  let step = 'start';
  const report: Report = (invariant, detail) => {
    violations.push({ invariant, step, detail });
    log(`  VIOLATION [${step}] ${invariant}: ${detail}`);
  };
  let p: Started | undefined;
  let load: Load | undefined;
  let watch: Watch | undefined;
  let ops = 0;
  try {
    p = start(sc.config, { pids, tag, broken: path.join(dir, 'broken'), ports });
    running.set(tag, p.pid);
    const started = p;
    const port = portOf(await p.waitFor('strategy', undefined, START_MS));
    const ctx: Ctx = {
      config: sc.config,
      model,
      p,
      pids,
      tag,
      port,
      broken: path.join(dir, 'broken'),
      taken: {},
      held: new Set(),
    };
    await p.waitFor('listening', undefined, START_MS);
    load = startLoad(port, sc.config.proto === 'tls', sc.config.proto !== 'tls' || sc.config.wsOverTls === true);
    let groupStopped = 0;
    const paused = () =>
      model.records.some((r) => r.op?.op === 'stopGroup' && (r.done === undefined || Date.now() - r.done < 1500)) ||
      groupStopped > Date.now();
    watch = watchBlackHole(ctx, ports.monitor, paused, report);
    // The process the user started is the service: once it is gone with no ending asked,
    // the rest of the sequence would only repeat that.
    const lastExit = () => {
      if (started.exit && !model.ending) {
        report(
          'the started process lives as long as the service',
          `it exited (${started.exit.code ?? started.exit.signal}) with no ending asked`,
        );
        throw new Abort();
      }
    };

    let inflight: OpRecord[] = [];
    const check = async () => {
      await Promise.all(inflight.map((r) => r.promise));
      const st = await settle(ctx, model, report);
      lastExit();
      if (st) await checkSettled(ctx, model, st, ports, report);
      for (const r of inflight) {
        const bad = judgeOutcome(ctx, model, r);
        if (bad) report('the requester is told the truth', `${r.label}: ${bad}`);
      }
      inflight = [];
    };

    // While the cluster starts: the first worker listens, the others are on their way.
    for (const [i, op] of sc.atStart.entries()) {
      await sleep(gapOf(op, 'start'));
      const rec = fire(ctx, op, 'start', i);
      log(`  during start: ${rec.label}`);
      inflight.push(rec);
      ops++;
    }
    // An ending while the cluster starts: the other operations are not run.
    const duringStart = endingMoment(sc) === 'starting';
    if (!duringStart) {
      await until(
        async () => {
          const st = await askStatus(pids, started.pid, 1000);
          return started.exit || (!(st instanceof Error) && st.state !== 'starting');
        },
        START_MS,
        'the start to complete',
      );
      await check();
    }

    for (const [i, op] of duringStart ? [] : sc.ops.entries()) {
      step = `step ${i + 1}`;
      await sleep(op.gap);
      const o = effective(op, sc.config);
      // Broken code on disk breaks every worker started meanwhile: nothing else runs while it is
      // there, and what was asked before it has been carried out (a queued upgrade would load it).
      if ('broken' in o && o.broken) {
        await Promise.all(inflight.map((r) => r.promise));
        await check();
      }
      const rec = fire(ctx, op, 'run', i);
      log(`  ${step}: ${rec.label}`);
      ops++;
      inflight.push(rec);
      if (o.op === 'stopGroup') groupStopped = Date.now() + o.ms + 1500;
      if (waits(op)) await check();
    }

    step = 'ending';
    // A moment of a reload or an upgrade still under way (else the ending comes after its gap, as any).
    const at = endingMoment(sc);
    const under = at && inflight.filter((r) => r.op?.op === momentOp(at)).pop();
    if (at && under) {
      // A reload's moment: its first replacement ('recycled', reason reload: the API's args, the command's line).
      const ev = at === 'reloading' ? 'recycled' : at;
      const reload = (e: Event) => e.args[2] === 'reload' || (e.args[0] as { reason?: string })?.reason === 'reload';
      await p
        .waitFor(ev, (e) => e.t >= under.at && (at !== 'reloading' || reload(e)), SETTLE_MS)
        .catch(() => log(`  (no ${at} moment seen: the ending fires anyway)`));
    }
    await sleep(gapOfEnding(sc));
    // A worker the test holds stopped is let go first (else a shutdown could only kill it).
    await Promise.all(
      model.records.filter((r) => r.op?.op === 'stopWorker' || r.op?.op === 'stopGroup').map((r) => r.promise),
    );
    const ending = fireEnding(ctx, sc);
    log(`  ${step}: ${ending.label}`);
    ops++;
    // An ending asked by a command or another script reaches the master only once that process
    // runs (hundreds of ms on a busy machine), and what is asked "while ending" may then arrive
    // first: it waits until the master took the ending (its CLUSTER2_TRACE_LIFECYCLE line), or 5 s.
    if (/^(cli|api) /.test(ending.ending!.kind)) {
      const took = /^cluster2-lifecycle: \S+ (shutdown|stop) (end|join|pass)$/;
      await until(() => ctx.p.stderr.some((l) => l.t >= ending.at && took.test(l.text)), 5000).catch(() => {});
    }
    const after: OpRecord[] = [];
    for (const [i, op] of sc.after.entries()) {
      await sleep(gapOf(op, 'after'));
      const r = fire(ctx, op, 'after', i);
      log(`  while ending: ${r.label}`);
      after.push(r);
      ops++;
    }
    await checkEnded(ctx, model, ending, ports, ENDING_MS(sc.config), report);
    await load.stop();
    await Promise.all([...inflight, ending, ...after].map((r) => r.promise));
    for (const r of [...inflight, ending, ...after]) {
      const bad = judgeOutcome(ctx, model, r);
      if (bad) report('the requester is told the truth', `${r.label}: ${bad}`);
    }
    for (const e of p.events.filter((x) => x.ev === 'reloadFailed' && model.ending && x.t >= model.ending.at - 100)) {
      // (A reload that failed because the test killed its replacement may say so: only one cut by the ending may not.)
      if (/keep serving/.test(e.msg) && /shutting down|stopping|stopped/.test(e.msg))
        report(
          'the requester is told the truth',
          `during ${model.ending!.kind}: reloadFailed says ${JSON.stringify(e.msg)}; the service is shutting down`,
        );
    }
  } catch (e) {
    if (!(e instanceof Abort)) report('the harness runs the sequence', (e as Error).message);
  } finally {
    await watch?.stop();
    await load?.stop();
    // C2_CHAOS_DUMP=1: the processes left, and what the started one is blocked in.
    if (process.env.C2_CHAOS_DUMP === '1' && violations.length && p) {
      try {
        const ps = execSync('ps -eo pid,ppid,pgid,stat,wchan:24,args', { encoding: 'utf8' });
        const mine = new Set(
          tagged(tag)
            .map((x) => String(x.pid))
            .concat(String(p!.pid)),
        );
        for (const l of ps.split('\n')) {
          const f = l.trim().split(/\s+/);
          if (mine.has(f[0]) || mine.has(f[1])) console.error(`    ps ${l}`);
        }
      } catch {
        /* no ps */
      }
      try {
        const pid = p.pid;
        console.error(`    syscall ${fs.readFileSync(`/proc/${pid}/syscall`, 'utf8').trim()}`);
        for (const t of fs.readdirSync(`/proc/${pid}/task`))
          console.error(
            `    task ${t} ${fs.readFileSync(`/proc/${pid}/task/${t}/comm`, 'utf8').trim()} ${fs.readFileSync(`/proc/${pid}/task/${t}/wchan`, 'utf8')}`,
          );
        for (const fd of fs.readdirSync(`/proc/${pid}/fd`))
          console.error(`    fd ${fd} -> ${fs.readlinkSync(`/proc/${pid}/fd/${fd}`)}`);
      } catch (e) {
        console.error(`    proc: ${(e as Error).message}`);
      }
    }
    await killAll(tag, p ? [p.pid] : []);
    running.delete(tag);
    // The commands still running (after an abort) end once they find no master: wait for them.
    await Promise.race([Promise.all(model.records.map((r) => r.promise)), sleep(30_000)]);
    fs.rmSync(dir, { recursive: true, force: true });
  }
  step = 'load';
  const failures = load?.failures ?? [];
  const bad = failures.filter((f) => !model.allows(f));
  if (bad.length) {
    const groups = new Map<string, Failure[]>();
    for (const f of bad) {
      const k = `${f.kind} ${f.error}`;
      groups.set(k, [...(groups.get(k) ?? []), f]);
    }
    for (const [k, fs_] of groups)
      report(
        'no request fails that the model does not allow',
        `${fs_.length} x ${k}, at ${fs_
          .slice(0, 3)
          .map((f) => `+${f.t - (p?.startedAt ?? t0)}ms${f.pid ? ` (worker ${f.pid})` : ''}`)
          .join(', ')}; ${near(model, fs_[0])}`,
      );
  }
  // C2_CHAOS_DUMP=1: what the cluster said (stderr, events), for a failure to be read.
  if (process.env.C2_CHAOS_DUMP === '1' && violations.length && p) {
    for (const l of p.stderr) console.error(`    stderr +${l.t - p.startedAt}ms ${l.text.slice(0, 300)}`);
    for (const e of p.events)
      console.error(`    event +${e.t - p.startedAt}ms ${e.ev} ${JSON.stringify(e.args).slice(0, 200)}`);
  }
  const cells = cellsOf(p?.stderr ?? []);
  return { scenario: sc, violations, served: { ...load?.ok }, failures, ops, ms: Date.now() - t0, cells };
}

/** The operations around a failure: which one it followed. */
function near(m: Model, f: Failure): string {
  const before = m.records.filter((r) => r.at <= f.t).pop();
  return before ? `after "${before.label}" (+${f.t - before.at}ms)` : 'before any operation';
}

/** A failed sequence as a report: the sequence, what did not hold, and the sequence as JSON (--scenario). */
export function formatResult(r: Result): string {
  return [
    describe(r.scenario),
    ...r.violations.map((v) => `  ✗ [${v.step}] ${v.invariant}: ${v.detail}`),
    ...(r.violations.length ? [`  as JSON: ${JSON.stringify(r.scenario)}`] : []),
  ].join('\n');
}
