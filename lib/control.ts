import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { distrustSocket, ownedByUs, warnIgnored } from './pid-trust';
import type { MasterStatus } from './status';
import { findPids, isAlive } from './pidfiles';
import { safeText } from './safe-text';

/**
 * The client side of the scripted flows: find the running masters through
 * their pid files, then ask them over their control socket (status, reload,
 * scale, shutdown, stop) or signal them, and wait until it is done.
 *
 * The control channel: each master listens on `<pids>/master.<pid>.sock`, a
 * Unix socket with mode 0600, so only its own user (and root) can connect; a
 * client sends one request as a JSON line and reads one answer as a JSON line.
 */

/** How often a control client looks whether a master is gone. */
const POLL_MS = 25;

export type ControlRequest =
  | { op: 'status' }
  | { op: 'reload' }
  /** `n`: that many workers; `delta`: that many more (or fewer, negative). */
  | { op: 'scale'; n?: number; delta?: number }
  | { op: 'shutdown' }
  | { op: 'stop' }
  /** ECV on or off (`cluster2 ecv enable|disable`): the control socket's 0600 is the access check. */
  | { op: 'ecv'; enabled: boolean }
  /** `node`: the new master's node binary (default: node on the master's PATH). */
  | { op: 'upgrade'; node?: string };

export type ControlOp = ControlRequest['op'];
export const CONTROL_OPS: readonly ControlOp[] = ['status', 'reload', 'scale', 'shutdown', 'stop', 'ecv', 'upgrade'];

/** What a master answers, per request. */
export interface ControlResults {
  status: MasterStatus;
  /** The pids of the workers serving once the reload finished. */
  reload: { workers: number[] };
  scale: { size: number; workers: number[] };
  /** The master's exit code (1: it had to kill workers at gracefulTimeout); null when it went before telling. */
  shutdown: { exitCode: number | null };
  stop: { exitCode: number | null };
  ecv: { enabled: boolean; since: number };
  /** Answered once the new master is up; the old one then drains and exits. */
  upgrade: { from: number; to: number; node: string };
}

/** One line from the master. */
export type ControlAnswerLine<T = unknown> = ({ ok: true; result: T } | { ok: false; error: string }) & {
  /** The answering master's pid: a client checks it is the one its pid file names. */
  pid?: number;
};

export interface ControlAnswer<T> {
  pid: number;
  result: T;
}

/** `<pids>/master.<pid>.sock`. */
export function controlSocketFile(pids: string, pid: number): string {
  return path.join(pids, `master.${pid}.sock`);
}

/**
 * A Unix socket path must fit sun_path (108 bytes on Linux, 104 on macOS,
 * with the terminating NUL). A longer pids path is reached on Linux through
 * /proc/self/fd/<fd of the directory>/<name>, which the kernel resolves
 * without that limit; release() once the socket is bound or connected.
 */
export function socketAddress(file: string): { address: string; release(): void } {
  if (Buffer.byteLength(file) < 104) return { address: file, release() {} };
  if (process.platform !== 'linux') {
    throw new Error(
      `cluster2: the control socket path ${file} is longer than a Unix socket allows (103 bytes); ` +
        'use a shorter pids directory',
    );
  }
  let fd: number | undefined = fs.openSync(path.dirname(file), 'r');
  const release = () => {
    if (fd !== undefined) fs.closeSync(fd);
    fd = undefined; // once: the number may be reused by then
  };
  return { address: `/proc/self/fd/${fd}/${path.basename(file)}`, release };
}

/** The master closed the connection without answering (it exited). */
class Closed extends Error {}

/** Send one request to one master and read its answer. */
export function askMaster<R extends ControlRequest>(
  pids: string,
  pid: number,
  request: R,
  timeout: number,
): Promise<ControlResults[R['op']]> {
  const file = controlSocketFile(pids, pid);
  return new Promise((resolve, reject) => {
    const { address, release } = socketAddress(file);
    let buf = '';
    let settled = false;
    const socket = net.connect(address);
    const done = (err: Error | null, result?: unknown) => {
      if (settled) return;
      settled = true;
      release();
      clearTimeout(timer);
      socket.destroy();
      if (err) reject(err);
      else resolve(result as ControlResults[R['op']]);
    };
    const timer = setTimeout(() => {
      done(new Error(`cluster2: ${request.op}: master ${pid} did not answer within ${seconds(timeout)}`));
    }, timeout);
    socket.setEncoding('utf8');
    socket.on('connect', () => socket.write(`${JSON.stringify(request)}\n`));
    socket.on('data', (d: string) => {
      buf += d;
      const nl = buf.indexOf('\n');
      if (nl < 0) return;
      let answer: ControlAnswerLine;
      try {
        answer = JSON.parse(buf.slice(0, nl));
      } catch {
        return done(new Error(`cluster2: ${request.op}: master ${pid} sent an unreadable answer`));
      }
      if (answer.pid !== pid) {
        return done(
          new Error(
            `cluster2: ${request.op}: ${file} answered for pid ${safeText(String(answer.pid))}, not ${pid}: ignored`,
          ),
        );
      }
      if (answer.ok) done(null, answer.result);
      else done(new Error(answer.error));
    });
    socket.on('error', (e: NodeJS.ErrnoException) => {
      if (e.code === 'ENOENT' || e.code === 'ECONNREFUSED') {
        done(
          new NoSocket(
            `cluster2: ${request.op}: master ${pid} has no control socket (${file}); ` +
              'a master started with cluster: false has none',
          ),
        );
      } else if (e.code === 'EACCES' || e.code === 'EPERM') {
        done(new Error(`cluster2: ${request.op}: permission denied on ${file}: the master belongs to another user`));
      } else done(new Error(`cluster2: ${request.op}: master ${pid}: ${e.message}`));
    });
    socket.on('close', () =>
      done(
        new Closed(
          `cluster2: ${request.op}: master ${pid} closed the control connection without answering (it exited?)`,
        ),
      ),
    );
  });
}

/** The master has no control socket (cluster: false, or it is still starting). */
export class NoSocket extends Error {}

/** Live masters in the pids directory; sockets left by dead ones are removed on the way. */
export function findMasters(pids: string, what: string): number[] {
  const masters = findPids(pids, 'master').filter((pid) => {
    const file = controlSocketFile(pids, pid);
    const why = distrustSocket(file);
    if (why !== null) warnIgnored(file, `${why}; master ${pid} is ignored`);
    return why === null;
  });
  removeStaleSockets(pids);
  if (masters.length === 0) {
    throw new NotRunning(
      `cluster2: ${what}: no running master found in ${pids} (no master.<pid>.pid of a live process)`,
    );
  }
  return masters;
}

/** Nothing runs: no master pid file of a live process. */
export class NotRunning extends Error {}

function removeStaleSockets(pids: string): void {
  let names: string[];
  try {
    names = fs.readdirSync(pids);
  } catch {
    return;
  }
  for (const name of names) {
    const m = /^master\.(\d+)\.sock$/.exec(name);
    if (m && Number(m[1]) !== process.pid && !isAlive(Number(m[1]))) {
      const file = path.join(pids, name);
      // Only this user's (or root's) own leftovers.
      try {
        if (ownedByUs(fs.lstatSync(file))) fs.unlinkSync(file);
      } catch {
        /* gone meanwhile */
      }
    }
  }
}

/**
 * Ask every running master in `pids` and wait for all answers. Rejects when
 * none runs, or with the master's own error message when one fails (prefixed
 * with its pid when several run).
 */
export async function controlRequest<R extends ControlRequest>(
  pids: string,
  request: R,
  timeout: number,
): Promise<ControlAnswer<ControlResults[R['op']]>[]> {
  const masters = findMasters(pids, request.op);
  const settled = await Promise.allSettled(masters.map((pid) => askMaster(pids, pid, request, timeout)));
  const errors: string[] = [];
  const answers: ControlAnswer<ControlResults[R['op']]>[] = [];
  settled.forEach((s, i) => {
    if (s.status === 'fulfilled') answers.push({ pid: masters[i], result: s.value });
    else
      errors.push(
        masters.length > 1 ? `master ${masters[i]}: ${(s.reason as Error).message}` : (s.reason as Error).message,
      );
  });
  if (errors.length) throw new Error(errors.join('; '));
  return answers;
}

/**
 * shutdown or stop every running master and wait until each has exited:
 * through the control socket (which tells the exit code), or by signal
 * (SIGTERM / SIGQUIT) for a master without one.
 */
export async function endMasters(
  pids: string,
  op: 'shutdown' | 'stop',
  timeout: number,
): Promise<ControlAnswer<{ exitCode: number | null }>[]> {
  const masters = findMasters(pids, op);
  const deadline = Date.now() + timeout;
  return Promise.all(
    masters.map(async (pid) => {
      let exitCode: number | null = null;
      try {
        exitCode = (await askMaster(pids, pid, { op }, timeout)).exitCode;
      } catch (e) {
        if (e instanceof NoSocket) {
          try {
            process.kill(pid, op === 'stop' ? 'SIGQUIT' : 'SIGTERM');
          } catch {
            /* exited meanwhile */
          }
        } else if (!(e instanceof Closed)) throw e;
      }
      await waitGone([pid], deadline, op);
      return { pid, result: { exitCode } };
    }),
  );
}

/** Resolves when none of the pids is alive; rejects at the deadline. */
export async function waitGone(pids: number[], deadline: number, what: string): Promise<void> {
  for (;;) {
    const left = pids.filter(isAlive);
    if (left.length === 0) return;
    if (Date.now() > deadline) {
      throw new Error(`cluster2: ${what}: master ${left.join(', ')} did not exit in time`);
    }
    await new Promise((r) => setTimeout(r, POLL_MS));
  }
}

/**
 * Upgrade the running master: resolves once the new master is up and the old
 * one has exited (its workers drained). Several masters in one directory (an
 * upgrade already under way) are refused by the master that is busy.
 */
export async function upgradeMasters(
  pids: string,
  node: string | undefined,
  timeout: number,
): Promise<ControlResults['upgrade']> {
  const deadline = Date.now() + timeout;
  const [answer] = await controlRequest(
    pids,
    node === undefined ? { op: 'upgrade' } : { op: 'upgrade', node },
    timeout,
  );
  await waitGone([answer.result.from], deadline, 'upgrade');
  return answer.result;
}

/** Signal every running master and wait until they have exited. */
export async function signalMasters(
  pids: string,
  signal: NodeJS.Signals,
  timeout: number,
  what: string,
): Promise<number[]> {
  const masters = findMasters(pids, what);
  for (const pid of masters) {
    try {
      process.kill(pid, signal);
    } catch {
      /* exited meanwhile */
    }
  }
  await waitGone(masters, Date.now() + timeout, what).catch(() => {
    throw new Error(
      `cluster2: ${what}: master ${masters.filter(isAlive).join(', ')} did not exit within ${timeout} ms`,
    );
  });
  return masters;
}

function seconds(ms: number): string {
  return `${Math.round(ms / 100) / 10} s`;
}
