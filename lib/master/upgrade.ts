import { fork, type ChildProcess } from 'node:child_process';
import { CHILD_STDIO } from '../shared/ipc';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { UPGRADE_ENV, type UpgradeHandoff } from '../listen/inherited';
import { KEEPER_ENV, keeperEnv, type KeeperRef } from './keeper';

/**
 * Replacing the master itself (`cluster2 upgrade`, SIGUSR2, `upgrade()`), as
 * nginx's binary upgrade and gunicorn's USR2 do: the running master starts a
 * new master from the same command line (the Node binary on PATH or the one
 * asked for, the code on disk now), handing it every listening socket as an
 * inherited descriptor named in CLUSTER2_UPGRADE, with its worker count (when
 * scaled) and its ECV state. The new master adopts the sockets without binding,
 * forks its workers and, once all are up, says so over the IPC channel; the old
 * one then hands over (lib/master/master.ts). The port never closes. If the new
 * master exits, fails or is not up in time, the old one carries on as if nothing
 * happened; if the old one ends meanwhile (a shutdown, a stop), the new one is
 * told to end the same way: it never serves alone on sockets being closed.
 *
 * The new master runs in a session of its own: a terminal's Ctrl-C reaches the
 * process the user started, which forwards it (lib/master/keeper.ts).
 */

/** Old master -> new master's messages (over the fork's IPC channel). */
export type UpgradeMessage = { c2up: 'ready' } | { c2up: 'failed'; message: string };

/** What the upgrade asks of the master being replaced. */
export interface Upgradable {
  /** The sockets to hand over (descriptors in this process), their ports, the worker count and ECV. */
  handoff(): Omit<UpgradeHandoff, 'from'>;
  /** null when an upgrade may start now, else why not. */
  refusal(): string | null;
  /** The keeper the new master reports to (this process, or this one's own keeper). */
  keeper(): KeeperRef;
}

export interface UpgradeResult {
  /** The master replaced (this one) and the new master. */
  from: number;
  to: number;
  node: string;
}

/** The new master, once it serves: its process as this one forked it. */
export interface Successor extends UpgradeResult {
  child: ChildProcess;
}

/** The first descriptor of the inherited sockets in the new master (0-2 stdio, 3 the IPC channel). */
const FIRST_FD = 4;

/** `node` found on PATH, else this process's own binary. */
export function nodeOnPath(env: NodeJS.ProcessEnv = process.env): string {
  for (const dir of (env.PATH ?? '').split(path.delimiter)) {
    if (!dir) continue;
    const file = path.join(dir, 'node');
    try {
      fs.accessSync(file, fs.constants.X_OK);
      return file;
    } catch {
      /* not here */
    }
  }
  return process.execPath;
}

/** The old master's side: one upgrade at a time. */
export class Upgrader {
  private running: { child: ChildProcess; done: Promise<Successor>; exited: Promise<void> } | undefined;
  private cancelled: string | undefined;

  constructor(
    private readonly master: Upgradable,
    private readonly timeout: number,
    private readonly events: {
      upgrading(pid: number, node: string): void;
      upgraded(r: UpgradeResult): void;
      failed(message: string): void;
    },
  ) {}

  get busy(): boolean {
    return this.running !== undefined;
  }

  /** Start a new master with `node` (default: node on PATH); resolves once it is up. */
  upgrade(node?: string): Promise<Successor> {
    if (this.running) {
      return Promise.reject(
        new Error(
          `cluster2: an upgrade is already under way (new master ${this.running.child.pid}); wait for it to finish`,
        ),
      );
    }
    const refusal = this.master.refusal();
    if (refusal) return Promise.reject(new Error(`cluster2: cannot upgrade: ${refusal}`));
    const bin = node ?? nodeOnPath();
    try {
      fs.accessSync(bin, fs.constants.X_OK);
    } catch {
      return Promise.reject(new Error(`cluster2: cannot upgrade: the node binary ${bin} is not an executable file`));
    }
    const h = this.master.handoff();
    // In the new master: the app sockets from FIRST_FD on, then the monitor's and the metrics server's.
    const fds = [...h.app];
    const at = (fd: number | undefined) => (fd === undefined ? undefined : FIRST_FD + fds.push(fd) - 1);
    const handoff: UpgradeHandoff = {
      ...h,
      from: process.pid,
      app: h.app.map((_, i) => FIRST_FD + i),
      monitor: at(h.monitor),
      metrics: at(h.metrics),
    };
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      [UPGRADE_ENV]: JSON.stringify(handoff),
      [KEEPER_ENV]: keeperEnv(this.master.keeper()),
    };
    // systemd's watchdog follows the main pid: the new master takes the pings over.
    delete env.WATCHDOG_PID;
    let child: ChildProcess;
    try {
      child = fork(process.argv[1], process.argv.slice(2), {
        execPath: bin,
        execArgv: process.execArgv,
        cwd: process.cwd(),
        env,
        stdio: [...CHILD_STDIO, ...fds],
        detached: true, // a session of its own: the keeper forwards the terminal's signals
      });
    } catch (e) {
      return Promise.reject(new Error(`cluster2: cannot upgrade: starting ${bin} failed: ${(e as Error).message}`));
    }
    this.cancelled = undefined;
    this.events.upgrading(child.pid ?? -1, bin);
    const exited = new Promise<void>((resolve) => {
      if (child.pid === undefined) resolve();
      child.once('exit', () => resolve());
      child.once('error', () => {
        if (child.pid === undefined) resolve();
      });
    });
    const done = this.await(child, bin).then(
      (r) => {
        this.running = undefined;
        this.events.upgraded(r);
        return { ...r, child };
      },
      (e: Error) => {
        this.running = undefined;
        const error = new Error(
          this.cancelled
            ? `cluster2: upgrade cancelled: ${this.cancelled}; the new master ${child.pid} was stopped`
            : `cluster2: upgrade failed, the old master keeps serving: ${e.message}`,
        );
        this.events.failed(error.message);
        throw error;
      },
    );
    this.running = { child, done, exited };
    return done;
  }

  /**
   * This master ends while the new one starts: the new one is told to end the
   * same way (SIGTERM: drain; SIGQUIT: kill its workers), and the upgrade fails
   * with `why`. Resolves once the new master has exited (at once when none runs).
   */
  cancel(how: 'drain' | 'kill', why: string): Promise<void> {
    const r = this.running;
    if (!r) return Promise.resolve();
    this.cancelled = why;
    try {
      r.child.kill(how === 'drain' ? 'SIGTERM' : 'SIGQUIT');
    } catch {
      /* gone already */
    }
    return r.exited;
  }

  private await(child: ChildProcess, node: string): Promise<UpgradeResult> {
    return new Promise((resolve, reject) => {
      let said = '';
      const timer = setTimeout(() => {
        finish(new Error(`the new master ${child.pid} was not up within ${this.timeout} ms; it was stopped`));
        child.kill('SIGTERM');
        setTimeout(() => child.kill('SIGKILL'), 10_000).unref();
      }, this.timeout);
      const finish = (e?: Error) => {
        clearTimeout(timer);
        child.off('message', onMessage);
        child.off('exit', onExit);
        child.off('error', onError);
        if (e) reject(e);
        else resolve({ from: process.pid, to: child.pid!, node });
      };
      const onMessage = (m: unknown) => {
        const u = m as UpgradeMessage;
        if (u?.c2up === 'ready') finish();
        else if (u?.c2up === 'failed') said = u.message;
      };
      const onExit = (code: number | null, signal: NodeJS.Signals | null) => {
        finish(
          new Error(
            `the new master ${child.pid} exited (code ${code}${signal ? `, signal ${signal}` : ''}) ` +
              `before it was up${said ? `: ${said}` : ''}`,
          ),
        );
      };
      const onError = (e: Error) => finish(new Error(`the new master could not be started: ${e.message}`));
      child.on('message', onMessage);
      child.once('exit', onExit);
      child.once('error', onError);
    });
  }
}

/**
 * The new master's side, while it starts: what it writes on stderr is kept
 * (its last line tells the old master why it failed, if it does), and its
 * exit before it was up is reported.
 */
export class UpgradeChild {
  private last = '';
  private handedOver = false;
  private readonly write = process.stderr.write;

  constructor() {
    // `self`: read inside a function whose `this` is another object.
    // eslint-disable-next-line @typescript-eslint/no-this-alias
    const self = this;
    process.stderr.write = function (this: NodeJS.WriteStream, chunk: unknown, ...rest: unknown[]) {
      // cluster2's own error lines (not the lifecycle log): the reason the old master reports.
      const why = String(chunk)
        .split('\n')
        .filter((l) => l.startsWith('cluster2: '))
        .pop();
      if (why) self.last = why;
      return (self.write as (...a: unknown[]) => boolean).call(this, chunk, ...rest);
    } as typeof process.stderr.write;
    process.on('exit', () => this.failed(this.last || 'see its stderr'));
  }

  failed(message: string): void {
    if (this.handedOver || !process.connected) return;
    this.handedOver = true;
    try {
      process.send!({ c2up: 'failed', message } satisfies UpgradeMessage);
    } catch {
      /* the old master is gone */
    }
  }

  /** Every worker is up: tell the old master, then let go of the channel. */
  ready(): Promise<void> {
    process.stderr.write = this.write;
    if (this.handedOver || !process.connected) return Promise.resolve();
    this.handedOver = true;
    return new Promise((resolve) => {
      process.send!({ c2up: 'ready' } satisfies UpgradeMessage, () => {
        if (process.connected) process.disconnect();
        resolve();
      });
    });
  }
}
