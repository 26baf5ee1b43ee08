import { ChildProcess } from 'node:child_process';

type Spawn = (this: ChildProcess, options: { detached?: boolean }) => unknown;

/**
 * Runs `fork` (node:cluster's cluster.fork, which has no `detached` option)
 * so that the process it spawns leads its own process group and session, as
 * child_process.fork(..., { detached: true }) would: libuv calls setsid() in
 * the child before exec, so the process is a leader from its first
 * instruction and no addon is needed.
 *
 * cluster.fork ends in child_process.fork, which spawns through
 * ChildProcess.prototype.spawn(options) synchronously, `options.detached`
 * included. For the length of the call, the first spawn gets
 * `detached: true`, and the prototype is put back at once (and in any case
 * when `fork` returns or throws): nothing else is ever affected. Whether it
 * took is checked where it can be, by the process group of the child
 * (lib/shared/process-group.ts leadsGroup, used by the supervisor at every fork).
 */
export function forkDetached<T>(fork: () => T): T {
  const proto = ChildProcess.prototype as unknown as { spawn: Spawn };
  const spawn = proto.spawn;
  proto.spawn = function (this: ChildProcess, options) {
    proto.spawn = spawn;
    if (options && typeof options === 'object') options.detached = true;
    return spawn.call(this, options);
  };
  try {
    return fork();
  } finally {
    proto.spawn = spawn;
  }
}
