import cluster from 'node:cluster';
import type { ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import { CHILD_STDIO, ENV } from '../shared/ipc';
import { sys } from '../shared/native';
import { forkDetached } from './detached-fork';
import { workerCommand, type Listener } from './strategy';

/**
 * After a round-robin master stopped accepting, how long its workers keep
 * taking the connections it had accepted but not handed out yet, before they
 * are told to drain (node:cluster closes what is still pending when its last
 * worker leaves).
 */
const HANDOFF_SETTLE_MS = 250;

/** Two descriptors name the same open socket. */
function sameSocket(a: number, b: number): boolean {
  try {
    const x = fs.fstatSync(a);
    const y = fs.fstatSync(b);
    return x.ino === y.ino && x.dev === y.dev;
  } catch {
    return false;
  }
}

/**
 * round-robin (SCHED_RR: the master accepts and hands connections out) and
 * shared (SCHED_NONE: workers accept from one shared socket), through node:cluster.
 *
 * With `socket` (the addon's listening socket, or one inherited from an
 * upgrade or systemd), the master owns the listening socket, so a new master
 * can inherit it: workers listen on `{ fd }`, which node:cluster's primary
 * opens as its round-robin or shared handle. node:cluster closes that
 * descriptor once its last worker leaves, so it gets a duplicate, renewed
 * when the previous one was closed. Without the addon and nothing inherited,
 * node:cluster binds host:port itself, as before.
 */
export class NodeClusterListener implements Listener {
  private copy = -1;
  /** round-robin: node:cluster's accepting handle in this process (see watchRoundRobin). */
  private accepting: { close(): void } | undefined;

  constructor(
    readonly name: 'round-robin' | 'shared',
    readonly port: number,
    private socket?: number,
  ) {
    // The policy is frozen by setupPrimary, so set it first.
    cluster.schedulingPolicy = name === 'round-robin' ? cluster.SCHED_RR : cluster.SCHED_NONE;
    const { exec, args, execArgv } = workerCommand();
    cluster.setupPrimary({ exec, args, execArgv, stdio: [...CHILD_STDIO] });
    if (name === 'round-robin' && socket !== undefined) this.watchRoundRobin();
  }

  /**
   * node:cluster's round-robin handle listens with net.Server#listen({ fd })
   * on our copy, then takes the server's handle out of reach. Its handle is
   * noted as it starts listening, so that an upgrade can stop this master's
   * accepting (the new master accepts on its own copy) before the workers
   * drain: otherwise connections this master accepted while its last worker
   * left would be closed by node:cluster.
   */
  private watchRoundRobin(): void {
    const listen = net.Server.prototype.listen;
    // `self`: read inside a function whose `this` is another object.
    // eslint-disable-next-line @typescript-eslint/no-this-alias
    const self = this;
    net.Server.prototype.listen = function (this: net.Server, ...args: unknown[]) {
      const o = args[0] as { fd?: unknown } | undefined;
      if (o && typeof o === 'object' && o.fd === self.copy) {
        // Before node:cluster's own 'listening' listener, which takes the handle.
        this.once('listening', () => {
          self.accepting = (this as unknown as { _handle: { close(): void } })._handle;
        });
      }
      return (listen as (...a: unknown[]) => net.Server).apply(this, args);
    } as typeof listen;
  }

  /** node:cluster's descriptor of the socket (the one workers name in `listen({ fd })`). */
  private nodeFd(): Record<string, string> {
    if (this.socket === undefined) return {};
    if (!sys.can.dup) return { [ENV.fd]: String(this.socket) };
    if (this.copy < 0 || !sameSocket(this.copy, this.socket)) this.copy = sys.dup(this.socket);
    return { [ENV.fd]: String(this.copy) };
  }

  /** A worker (or the spare) that leads its own process group, as reuseport's do (lib/shared/process-group.ts). */
  fork(_slot: number, env: NodeJS.ProcessEnv): ChildProcess {
    return forkDetached(() => cluster.fork({ ...env, ...this.nodeFd() })).process;
  }
  forkSpare(env: NodeJS.ProcessEnv): { proc: ChildProcess; slots: number } {
    return { proc: this.fork(-1, env), slots: Infinity };
  }
  takeover(): { env: Record<string, string> } {
    return { env: this.nodeFd() };
  }
  resize(): number {
    return 0;
  }
  handoff(): number[] {
    return this.socket === undefined ? [] : [this.socket];
  }
  /**
   * round-robin: the master stops accepting on its copy (a new master accepts on its own); its
   * workers finish what they were given.
   */
  stopAccepting(): number {
    if (!this.accepting) return 0;
    // Closing node:cluster's handle closes our copy only; node:cluster's own close of it later does nothing.
    this.accepting.close();
    this.accepting = undefined;
    return HANDOFF_SETTLE_MS;
  }
  close(): void {
    // Without a duplicate, node:cluster's handle owns the socket itself.
    if (this.socket !== undefined && sys.can.dup) sys.close(this.socket);
    this.socket = undefined;
  }
}
