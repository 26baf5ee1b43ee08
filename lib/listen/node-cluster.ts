import cluster from 'node:cluster';
import type { ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import { ENV } from '../ipc';
import { native } from '../native';
import { workerCommand, type Listener } from './strategy';

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

  constructor(readonly name: 'round-robin' | 'shared', readonly port: number, private socket?: number) {
    // The policy is frozen by setupPrimary, so set it first.
    cluster.schedulingPolicy = name === 'round-robin' ? cluster.SCHED_RR : cluster.SCHED_NONE;
    const { exec, args, execArgv } = workerCommand();
    cluster.setupPrimary({ exec, args, execArgv });
  }

  /** node:cluster's descriptor of the socket (the one workers name in `listen({ fd })`). */
  private nodeFd(): Record<string, string> {
    if (this.socket === undefined) return {};
    if (!native?.dup) return { [ENV.fd]: String(this.socket) };
    if (this.copy < 0 || !sameSocket(this.copy, this.socket)) this.copy = native.dup(this.socket);
    return { [ENV.fd]: String(this.copy) };
  }

  fork(_slot: number, env: NodeJS.ProcessEnv): ChildProcess {
    return cluster.fork({ ...env, ...this.nodeFd() }).process;
  }
  forkSpare(env: NodeJS.ProcessEnv): { proc: ChildProcess; slots: number } {
    return { proc: cluster.fork({ ...env, ...this.nodeFd() }).process, slots: Infinity };
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
  /** round-robin: the master stops accepting on its copy (a new master accepts on its own); its workers finish what they were given. */
  stopAccepting(): void {
    if (this.name !== 'round-robin' || this.copy < 0) return;
    const handles = (process as unknown as { _getActiveHandles(): unknown[] })._getActiveHandles();
    for (const h of handles) {
      if (h instanceof net.Server && (h as unknown as { _handle?: { fd?: number } })._handle?.fd === this.copy) h.close();
    }
  }
  close(): void {
    // Without a duplicate, node:cluster's handle owns the socket itself.
    if (this.socket !== undefined && native?.dup) native.close(this.socket);
    this.socket = undefined;
  }
}
