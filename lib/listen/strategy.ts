import type { ChildProcess } from 'node:child_process';
import * as path from 'node:path';
import { nodeHasReusePort, sys } from '../shared/native';
import type { Resolved } from '../shared/options';
import type { ActiveStrategy } from '../shared/protocol';

export type { ActiveStrategy };

/** How the master gives its workers something to accept on. */
export interface Listener {
  readonly name: ActiveStrategy;
  /** The app port, resolved (never 0 once created). */
  readonly port: number;
  /** Fork a worker for a slot; a replacement of the same slot gets the same socket. */
  fork(slot: number, env: NodeJS.ProcessEnv): ChildProcess;
  /**
   * Fork a spare: a worker process that boots and waits for a slot. `slots`:
   * the slots it can take (0..slots-1).
   */
  forkSpare(env: NodeJS.ProcessEnv): { proc: ChildProcess; slots: number };
  /** What a spare must be told to become the worker of `slot`. */
  takeover(slot: number): { env: Record<string, string>; keepFd?: number };
  /**
   * The number of slots changes. Returns how long a worker of a removed slot
   * should keep accepting before it closes (the queue its socket may still
   * hold once taken out of rotation), or 0.
   */
  resize(n: number): number;
  /** Close every socket the master holds. */
  close(): void;
  /** Upgrade: the listening sockets a new master inherits (none: its workers bind themselves). */
  handoff?(): number[];
  /**
   * Upgrade: the master itself stops accepting (round-robin), before its workers drain; returns
   * how long to let its workers take what it accepted (ms).
   */
  stopAccepting?(): number;
}

/** Every worker process starts here (./worker/entry), then runs the app's script. */
export const WORKER_ENTRY = path.join(__dirname, '..', 'worker', `entry${path.extname(__filename)}`);

/** What the worker processes run: the same script, arguments and node flags as the master, through the worker entry. */
export function workerCommand(): { exec: string; args: string[]; execArgv: string[] } {
  return { exec: WORKER_ENTRY, args: process.argv.slice(1), execArgv: process.execArgv };
}

export interface Choice {
  name: Exclude<ActiveStrategy, 'single'>;
  note?: string;
}

/** Resolve 'auto' and check that the asked strategy can run here. */
export function chooseStrategy(opts: Pick<Resolved, 'strategy'>): Choice {
  const linux = process.platform === 'linux';
  const canNative = sys.can.holdSockets && linux;
  const canNode = nodeHasReusePort && linux;
  switch (opts.strategy) {
    case 'auto':
      if (canNative) return { name: 'reuseport' };
      if (canNode) return { name: 'reuseport-node' };
      return { name: 'round-robin' };
    case 'reuseport':
      if (canNative) return { name: 'reuseport' };
      if (canNode) {
        return {
          name: 'reuseport-node',
          note:
            `cluster2: the native addon is not in use (${sys.implementation}); reuseport runs on Node's own ` +
            'reusePort option (connections queued on a worker that dies are reset unless ' +
            'net.ipv4.tcp_migrate_req is 1)',
        };
      }
      return {
        name: 'round-robin',
        note: `cluster2: strategy "reuseport" needs the native addon or Node >= 22.12 on Linux; using "round-robin"`,
      };
    default:
      return { name: opts.strategy };
  }
}
