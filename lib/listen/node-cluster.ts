import cluster from 'node:cluster';
import type { ChildProcess } from 'node:child_process';
import { workerCommand, type Listener } from './strategy';

/**
 * round-robin (SCHED_RR: the master accepts and hands connections out) and
 * shared (SCHED_NONE: workers accept from one shared socket), through node:cluster.
 */
export class NodeClusterListener implements Listener {
  constructor(readonly name: 'round-robin' | 'shared', readonly port: number) {
    // The policy is frozen by setupPrimary, so set it first.
    cluster.schedulingPolicy = name === 'round-robin' ? cluster.SCHED_RR : cluster.SCHED_NONE;
    const { exec, args, execArgv } = workerCommand();
    cluster.setupPrimary({ exec, args, execArgv });
  }
  fork(_slot: number, env: NodeJS.ProcessEnv): ChildProcess {
    return cluster.fork(env).process;
  }
  forkSpare(env: NodeJS.ProcessEnv): { proc: ChildProcess; slots: number } {
    return { proc: cluster.fork(env).process, slots: Infinity };
  }
  takeover(): { env: Record<string, string> } {
    return { env: {} };
  }
  resize(): number {
    return 0;
  }
  close(): void {}
}
