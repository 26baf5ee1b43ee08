import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { distrustSocket, findPids, isAlive, ownedByUs, warnIgnored } from '../shared/pids-dir';
import {
  type ControlRequest,
  type ControlResults,
  type ControlAnswerLine,
  type ControlAnswer,
  controlSocketFile,
  socketAddress,
} from '../shared/protocol';
import { safeText } from '../shared/safe-text';

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
 * @lazy required by cli/main.ts through `lazy.control()`
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
 * Upgrade the running master: resolves once the new master serves and the old one
 * has retired (its workers drained; it exited, or it stays as the keeper when it is the
 * process that started the service). The old master answers only then.
 * @lazy required by cli/main.ts and cluster.ts through `lazy.control()`
 */
export async function upgradeMasters(
  pids: string,
  node: string | undefined,
  timeout: number,
): Promise<ControlResults['upgrade']> {
  const [answer] = await controlRequest(
    pids,
    node === undefined ? { op: 'upgrade' } : { op: 'upgrade', node },
    timeout,
  );
  return answer.result;
}

/**
 * Signal every running master and wait until they have exited.
 * @lazy required by cluster.ts through `lazy.control()`
 */
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
