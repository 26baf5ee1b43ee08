// Carrying out one operation of a sequence as a user would: a signal to a master, the
// `cluster2` command, the API (a command line on the fixture's stdin), the ECV's HTTP route,
// or a worker (or everything) killed or stopped. Each returns its record at once, with a
// promise that resolves once it is done; the model is told what was fired.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { alive, until } from '../cluster';
import { run } from '../cli';
import { askStatus, get } from './ask';
import {
  GRACEFUL_MS,
  HEARTBEAT_MS,
  describeEnding,
  describeOp,
  effective,
  effectiveEnding,
  type Config,
  type Op,
  type Scenario,
} from './scenario';
import { signal, tagged } from './procs';
import type { Model, OpRecord, Phase } from './model';
import type { Started } from './started';

export interface Ctx {
  config: Config;
  model: Model;
  p: Started;
  pids: string;
  tag: string;
  port: number;
  /** The file whose existence makes a worker fail at start (broken code on disk). */
  broken: string;
  /** API answers already taken, per command. */
  taken: Record<string, number>;
  /** Workers a stopWorker holds stopped: a stopGroup must not resume them. */
  held: Set<number>;
}

/** A command waits at most this long (the runner's own deadline, beyond the command's). */
const COMMAND_TIMEOUT_MS = 60_000;

/** The master a signal goes to: the process started, or the latest master pid file (the serving master). */
export function masterPid(ctx: Ctx, target: 'started' | 'listed'): number {
  if (target === 'started') return ctx.p.pid;
  let best: { pid: number; mtime: number } | undefined;
  for (const f of safeReaddir(ctx.pids)) {
    const m = /^master\.(\d+)\.pid$/.exec(f);
    if (!m || !alive(Number(m[1]))) continue;
    try {
      const mtime = fs.statSync(path.join(ctx.pids, f)).mtimeMs;
      if (!best || mtime >= best.mtime) best = { pid: Number(m[1]), mtime };
    } catch {
      /* gone meanwhile */
    }
  }
  return best?.pid ?? ctx.p.pid;
}

function safeReaddir(dir: string): string[] {
  try {
    return fs.readdirSync(dir);
  } catch {
    return [];
  }
}

/** A listening worker of the serving master (chosen by `pick`), or undefined. */
async function someWorker(ctx: Ctx, pick: number): Promise<number | undefined> {
  const st = await askStatus(ctx.pids, masterPid(ctx, 'listed'));
  if (st instanceof Error) return undefined;
  const ws = st.workers.filter((w) => w.state === 'listening' && alive(w.pid));
  return ws.length ? ws[pick % ws.length].pid : undefined;
}

/** Send a command to the API's master and wait for its answer (the n-th of that command). */
async function api(ctx: Ctx, cmd: string, rec: OpRecord): Promise<void> {
  const name = cmd.split(' ')[0];
  const n = (ctx.taken[name] = (ctx.taken[name] ?? 0) + 1);
  if (!ctx.p.send(cmd)) {
    rec.outcome = { ok: false, message: 'stdin closed: the started process is gone' };
    return;
  }
  const answer = await until(
    () => {
      let seen = 0;
      for (const x of ctx.p.events) {
        if (x.ev === `${name}-ok` || x.ev === `${name}-error`) {
          if (++seen === n) return x;
        }
      }
      return ctx.p.exit ? 'exited' : undefined;
    },
    COMMAND_TIMEOUT_MS,
    `the API's answer to ${cmd}`,
  ).catch(() => undefined);
  if (answer === undefined) rec.outcome = { ok: false, message: `no answer to ${cmd} within ${COMMAND_TIMEOUT_MS} ms` };
  else if (answer === 'exited') rec.outcome = { ok: false, message: 'the started process exited before it answered' };
  else rec.outcome = { ok: answer.ev.endsWith('-ok'), message: String(answer.args[0] ?? '') };
}

async function cli(ctx: Ctx, args: string[], rec: OpRecord): Promise<void> {
  const r = await run([...args, '--pids', ctx.pids, '--timeout', String(COMMAND_TIMEOUT_MS / 1000 - 5)], {
    timeout: COMMAND_TIMEOUT_MS,
  });
  rec.outcome = { code: r.code, stdout: r.stdout, stderr: r.stderr };
}

function send(ctx: Ctx, rec: OpRecord, target: 'started' | 'listed', sig: NodeJS.Signals): void {
  rec.target = masterPid(ctx, target);
  rec.outcome = { sent: signal(rec.target, sig) };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A broken reload or upgrade asked by a signal is done once its failure was said (or at the deadline). */
async function saidFailed(ctx: Ctx, rec: OpRecord, ev: 'reloadFailed' | 'upgradeFailed'): Promise<void> {
  await until(
    () =>
      ctx.p.events.some((e) => e.t >= rec.at && (e.ev === ev || (e.ev === 'warning' && /fail|cannot/i.test(e.msg)))) ||
      ctx.p.stderr.some((l) => l.t >= rec.at && /failed|cannot/i.test(l.text)) ||
      ctx.p.exit,
    COMMAND_TIMEOUT_MS,
  ).catch(() => {
    rec.note = `nothing said the ${rec.op?.op} failed within ${COMMAND_TIMEOUT_MS} ms`;
  });
}

/** Fire `op` (as `effective` makes it for the configuration); returns at once. */
export function fire(ctx: Ctx, op: Op, phase: Exclude<Phase, 'ending'>, pick: number): OpRecord {
  const o = effective(op, ctx.config);
  const scaleStep = o.op !== 'scale' ? undefined : phase !== 'after' ? ctx.model.scaleStep(o.up) : o.up ? 1 : -1;
  const label = describeOp(o, ctx.config, phase, scaleStep);
  const rec: OpRecord = { label, op: o, phase, at: Date.now(), expect: 'none', promise: Promise.resolve() };
  if (phase === 'after') rec.expect = 'refused';
  // (model.fired turns a second ending into 'accepted' and a killed worker into 'none'.)
  const broken = 'broken' in o && o.broken && phase === 'run';
  if (broken) fs.writeFileSync(ctx.broken, '');
  ctx.model.fired(rec);
  if (scaleStep !== undefined && phase !== 'after') ctx.model.size += scaleStep;
  const work = async (): Promise<void> => {
    switch (o.op) {
      case 'reload':
        if (o.via === 'signal') {
          send(ctx, rec, o.target, 'SIGHUP');
          if (broken && rec.outcome?.sent) await saidFailed(ctx, rec, 'reloadFailed');
        } else if (o.via === 'cli') await cli(ctx, ['reload'], rec);
        else await api(ctx, 'reload', rec);
        break;
      case 'upgrade':
        if (o.via === 'signal') {
          send(ctx, rec, o.target, 'SIGUSR2');
          if (broken && rec.outcome?.sent) await saidFailed(ctx, rec, 'upgradeFailed');
        } else if (o.via === 'cli') await cli(ctx, ['upgrade'], rec);
        else await api(ctx, 'upgrade', rec);
        break;
      case 'scale':
        if (o.via === 'signal') {
          // The kernel discards a pending SIGTTIN or SIGTTOU when the process gets SIGCONT (they are
          // stop signals): one sent while the test holds every process stopped would be lost by design.
          await until(() => !ctx.model.records.some((r) => r.op?.op === 'stopGroup' && r.done === undefined), 5000);
          send(ctx, rec, o.target, scaleStep! > 0 ? 'SIGTTIN' : 'SIGTTOU');
        } else if (o.via === 'cli') await cli(ctx, ['scale', scaleStep! > 0 ? '+1' : '-1'], rec);
        else await api(ctx, `scale ${scaleStep! > 0 ? '+1' : '-1'}`, rec);
        break;
      case 'ecv':
        if (o.via === 'cli') await cli(ctx, ['ecv', o.enable ? 'enable' : 'disable'], rec);
        else {
          const r = await get(ctx.port, {
            path: `/ecv/${o.enable ? 'enable' : 'disable'}`,
            method: 'POST',
            tls: ctx.config.proto === 'tls',
            timeout: 10_000,
          });
          rec.outcome =
            r instanceof Error
              ? { ok: false, message: `${r.code ?? r.message}` }
              : { ok: r.status < 300, message: `${r.status} ${r.body.trim()}` };
        }
        break;
      case 'end':
        if (o.how === 'SIGTERM' || o.how === 'SIGQUIT') send(ctx, rec, o.target, o.how);
        else await cli(ctx, [o.how === 'cli stop' ? 'stop' : 'shutdown'], rec);
        break;
      case 'killWorker': {
        const w = await someWorker(ctx, pick);
        if (w === undefined) {
          rec.info = 'no listening worker to kill';
          break;
        }
        rec.worker = w;
        const window = { from: Date.now(), to: Infinity, pid: w, why: `worker ${w} SIGKILLed by the test` };
        ctx.model.windows.push(window);
        // Without the addon, nothing holds the port while no worker listens (docs/install.md: what
        // the fallback costs): node:cluster closes it (round-robin, shared, and 'reuseport' asked
        // on a Node without reusePort, which runs round-robin), or the workers held their own
        // sockets (reuseport-node): refused until the replacement listens.
        const closes = !ctx.model.config.native;
        const refused = {
          from: Date.now(),
          to: Infinity,
          why: `no worker listens after ${w}'s SIGKILL (no addon)`,
          cls: ['refused' as const],
        };
        if (closes) ctx.model.windows.push(refused);
        signal(w, 'SIGKILL');
        await until(() => !alive(w), 5000).catch(() => {});
        rec.until = Date.now();
        window.to = rec.until + 2000;
        refused.to = rec.until + 3000;
        break;
      }
      case 'stopWorker': {
        const w = await someWorker(ctx, pick);
        if (w === undefined) {
          rec.info = 'no listening worker to stop';
          break;
        }
        rec.worker = w;
        // What it holds waits until it is killed (reset), or longer than the client waits (a
        // round-robin master hands a connection to it before it is found hung).
        const window = {
          from: Date.now(),
          to: Infinity,
          pid: w,
          why: `worker ${w} SIGSTOPped past heartbeatTimeout`,
          cls: ['reset' as const, 'timeout' as const],
        };
        ctx.model.windows.push(window);
        ctx.held.add(w);
        signal(w, 'SIGSTOP');
        // The master must replace it (replacement first) and kill it: give it time for a replacement to boot.
        const gone = await until(() => !alive(w), HEARTBEAT_MS + 10_000).then(
          () => true,
          () => false,
        );
        ctx.held.delete(w);
        if (!gone) {
          signal(w, 'SIGCONT');
          rec.note = `worker ${w} was still alive ${HEARTBEAT_MS + 10_000} ms after SIGSTOP (heartbeatTimeout ${HEARTBEAT_MS}): not replaced`;
        }
        rec.until = Date.now();
        window.to = rec.until + 2000;
        break;
      }
      case 'stopGroup': {
        // Not a worker a stopWorker holds: it stays stopped, for its own op to see replaced.
        const all = tagged(ctx.tag).filter((x) => !x.stopped && !ctx.held.has(x.pid));
        // Masters first: none of them sees a worker stop before it stops itself.
        for (const p of [...all.filter((x) => x.role === 'master'), ...all.filter((x) => x.role !== 'master')])
          signal(p.pid, 'SIGSTOP');
        await sleep(o.ms);
        for (const p of all) if (!ctx.held.has(p.pid)) signal(p.pid, 'SIGCONT');
        break;
      }
    }
  };
  rec.promise = work()
    .catch((e: Error) => {
      rec.note = `the harness failed: ${e.stack ?? e.message}`;
    })
    .finally(() => {
      rec.done = Date.now();
      if (broken) fs.rmSync(ctx.broken, { force: true });
    });
  return rec;
}

/** Fire the ending; returns at once with its record. */
export function fireEnding(ctx: Ctx, sc: Scenario): OpRecord {
  const e = effectiveEnding(sc.ending, ctx.config);
  const rec: OpRecord = {
    label: describeEnding(sc),
    ending: e,
    phase: 'ending',
    at: Date.now(),
    expect: 'accepted',
    promise: Promise.resolve(),
  };
  ctx.model.ended(e.kind, rec.at);
  ctx.model.records.push(rec);
  const work = async (): Promise<void> => {
    switch (e.kind) {
      case 'SIGTERM':
      case 'SIGINT':
        send(ctx, rec, e.target, e.kind);
        break;
      case 'SIGINT x2':
        send(ctx, rec, e.target, 'SIGINT');
        await sleep(150);
        signal(rec.target!, 'SIGINT');
        break;
      case 'cli shutdown':
        await cli(ctx, ['shutdown'], rec);
        break;
      case 'cli stop':
        await cli(ctx, ['stop'], rec);
        break;
      case 'api shutdown':
        await api(ctx, 'shutdown', rec);
        break;
      case 'api stop':
        await api(ctx, 'stop', rec);
        break;
      case 'SIGKILL started':
        send(ctx, rec, 'started', 'SIGKILL');
        break;
      case 'SIGKILL serving':
        send(ctx, rec, 'listed', 'SIGKILL');
        break;
    }
  };
  rec.promise = work()
    .catch((err: Error) => {
      rec.note = `the harness failed: ${err.stack ?? err.message}`;
    })
    .finally(() => {
      rec.done = Date.now();
    });
  return rec;
}

/** How long an ending may take: the drain delay, then the drain (at most gracefulTimeout), with room. */
export const ENDING_MS = (c: Config) => c.drainDelay + GRACEFUL_MS + 10_000;
