import { fork, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import { reusePortSockets, type NativeBinding } from '../shared/native';
import { CHILD_STDIO, ENV } from '../shared/ipc';
import { workerCommand, type Listener } from './strategy';

/** The worker finds its slot's socket at this descriptor. */
export const WORKER_FD = 4;
const BACKLOG = 511;
/**
 * How long the worker of a slot taken out of rotation keeps accepting before it
 * closes: connections whose handshake was under way when it left the rotation
 * land in its queue meanwhile.
 */
export const LEAVE_ACCEPT_MS = 250;

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

  /** sticky: the steering program picks a slot from the client's address, not at random. */
  constructor(
    private readonly host: string,
    public port: number,
    private readonly sticky = false,
    private readonly sockets: NativeBinding = reusePortSockets(),
  ) {}

  private socket(slot: number): number {
    let fd = this.fds.get(slot);
    if (fd === undefined) {
      fd = this.sockets.listen(this.host, this.port, BACKLOG, true);
      this.fds.set(slot, fd);
      if (this.port === 0) this.port = this.sockets.localPort(fd);
    }
    return fd;
  }

  /** Take over the slot sockets of the master this one replaces (slot i: fds[i]). */
  adopt(fds: number[]): this {
    fds.forEach((fd, slot) => this.fds.set(slot, fd));
    if (fds.length) this.port = this.sockets.localPort(fds[0]);
    return this;
  }

  handoff(): number[] {
    return [...this.fds.keys()].sort((a, b) => a - b).map((slot) => this.fds.get(slot)!);
  }

  /** Create the sockets of the first slots (resolves port 0); on failure none stays open. */
  open(slots: number): this {
    try {
      this.resize(slots);
    } catch (err) {
      this.close();
      throw err;
    }
    return this;
  }

  /**
   * Sockets for slots 0..n-1, created in slot order: the kernel keeps a
   * reuseport group's sockets in the order they started listening, so the
   * steering program (new connections to the group's first n sockets) takes
   * the removed slots (always the last ones) out of rotation before their
   * sockets close, and their queued connections are accepted, not reset.
   * With sticky the program's index is also the slot a client address maps
   * to: a slot's socket outlives its workers, so the mapping holds until the
   * next resize.
   */
  resize(n: number): number {
    for (let slot = 0; slot < n; slot++) this.socket(slot);
    const first = this.fds.get(0);
    const program = this.sticky ? this.sockets.sticky : this.sockets.steer;
    const steered = first !== undefined && typeof program === 'function';
    if (steered) program(first, n);
    for (const slot of [...this.fds.keys()].filter((s) => s >= n).sort((a, b) => b - a)) {
      this.sockets.close(this.fds.get(slot)!);
      this.fds.delete(slot);
    }
    return steered ? LEAVE_ACCEPT_MS : 0;
  }

  fork(slot: number, env: NodeJS.ProcessEnv): ChildProcess {
    const fd = this.socket(slot);
    return fork(this.cmd.exec, this.cmd.args, {
      execArgv: this.cmd.execArgv,
      env: { ...process.env, ...env, [ENV.fd]: String(WORKER_FD) },
      stdio: [...CHILD_STDIO, fd],
      detached: true, // its own process group (lib/shared/process-group.ts)
    });
  }

  /** A spare holds every slot's socket (slot k at WORKER_FD + k) and keeps the one it is given. */
  forkSpare(env: NodeJS.ProcessEnv): { proc: ChildProcess; slots: number } {
    const slots = this.fds.size;
    const fds = Array.from({ length: slots }, (_, slot) => this.socket(slot));
    const proc = fork(this.cmd.exec, this.cmd.args, {
      execArgv: this.cmd.execArgv,
      env: { ...process.env, ...env, [ENV.spareFds]: fds.map((_, slot) => WORKER_FD + slot).join(',') },
      stdio: [...CHILD_STDIO, ...fds],
      detached: true,
    });
    return { proc, slots };
  }

  takeover(slot: number): { env: Record<string, string>; keepFd: number } {
    return { env: { [ENV.fd]: String(WORKER_FD + slot) }, keepFd: WORKER_FD + slot };
  }

  close(): void {
    for (const fd of this.fds.values()) {
      try {
        this.sockets.close(fd);
      } catch {
        // EBADF: already gone; the others are still closed
      }
    }
    this.fds.clear();
  }
}

/** net.ipv4.tcp_migrate_req: 1 moves a closed listener's queue to another socket of its reuseport group. */
export function tcpMigrateReq(): string {
  try {
    return fs.readFileSync('/proc/sys/net/ipv4/tcp_migrate_req', 'utf8').trim();
  } catch {
    return 'unknown';
  }
}

/** The warning a master using reuseport-node gives: what a dying worker's queue becomes. */
export function migrateNote(): string {
  return (
    "cluster2: reuseport through Node's own reusePort option: connections queued on a worker that dies " +
    `are reset unless net.ipv4.tcp_migrate_req is 1 (it is ${tcpMigrateReq()})`
  );
}

/** Reuseport without the addon (Node >= 22.12): each worker binds its own SO_REUSEPORT socket. */
export class NodeReusePortListener implements Listener {
  readonly name = 'reuseport-node' as const;
  private readonly cmd = workerCommand();
  constructor(readonly port: number) {}
  fork(_slot: number, env: NodeJS.ProcessEnv): ChildProcess {
    return fork(this.cmd.exec, this.cmd.args, {
      execArgv: this.cmd.execArgv,
      env: { ...process.env, ...env },
      detached: true,
    });
  }
  forkSpare(env: NodeJS.ProcessEnv): { proc: ChildProcess; slots: number } {
    return { proc: this.fork(-1, env), slots: Infinity };
  }
  takeover(): { env: Record<string, string> } {
    return { env: {} };
  }
  resize(): number {
    return 0;
  }
  close(): void {}
}
