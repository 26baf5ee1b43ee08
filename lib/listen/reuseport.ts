import { fork, type ChildProcess } from 'node:child_process';
import { native } from '../native';
import { ENV } from '../ipc';
import { workerCommand, type Listener } from './strategy';

/** The worker finds its slot's socket at this descriptor. */
export const WORKER_FD = 4;
const BACKLOG = 511;

/**
 * One SO_REUSEPORT socket per slot, created and kept open by the master for the
 * cluster's life; each worker accepts on a duplicate of its slot's socket. The
 * master accepts nothing, and connections queued on a slot whose worker dies
 * wait for the replacement instead of being reset.
 */
export class ReusePortListener implements Listener {
  readonly name = 'reuseport' as const;
  private readonly fds = new Map<number, number>();
  private readonly cmd = workerCommand();

  constructor(private readonly host: string, public port: number) {}

  private socket(slot: number): number {
    let fd = this.fds.get(slot);
    if (fd === undefined) {
      fd = native!.listen(this.host, this.port, BACKLOG, true);
      if (this.port === 0) this.port = native!.localPort(fd);
      this.fds.set(slot, fd);
    }
    return fd;
  }

  /** Create the sockets of the first slots (resolves port 0). */
  open(slots: number): this {
    for (let i = 0; i < slots; i++) this.socket(i);
    return this;
  }

  fork(slot: number, env: NodeJS.ProcessEnv): ChildProcess {
    const fd = this.socket(slot);
    return fork(this.cmd.exec, this.cmd.args, {
      execArgv: this.cmd.execArgv,
      env: { ...process.env, ...env, [ENV.fd]: String(WORKER_FD) },
      stdio: ['inherit', 'inherit', 'inherit', 'ipc', fd],
    });
  }

  release(slot: number): void {
    const fd = this.fds.get(slot);
    if (fd === undefined) return;
    this.fds.delete(slot);
    native!.close(fd);
  }

  close(): void {
    for (const slot of [...this.fds.keys()]) this.release(slot);
  }
}

/** Reuseport without the addon (Node >= 22.12): each worker binds its own SO_REUSEPORT socket. */
export class NodeReusePortListener implements Listener {
  readonly name = 'reuseport-node' as const;
  private readonly cmd = workerCommand();
  constructor(readonly port: number) {}
  fork(_slot: number, env: NodeJS.ProcessEnv): ChildProcess {
    return fork(this.cmd.exec, this.cmd.args, { execArgv: this.cmd.execArgv, env: { ...process.env, ...env } });
  }
  release(): void {}
  close(): void {}
}
