import type { EventEmitter } from 'node:events';
import type { ControlRequest } from '../shared/protocol';
import { askMaster } from '../client/control';
import { Keeper } from './keeper';
import type { Request } from './lifecycle';
import type { Successor } from './upgrade';

// What a master does with the master that replaced it (an upgrade handed over): it passes
// what is asked of it on, and the process the user started keeps it (lib/master/keeper.ts).
/** This process keeps the master that replaced it (`c`: the Cluster, told each signal and whom it keeps). */
export function keepSuccessor(s: Successor, c: EventEmitter, exit: (code: number) => void): Keeper {
  return new Keeper(s.to, s.child, {
    signal: (sig) => c.emit(sig),
    keeps: (pid) => c.emit('keeping', pid),
    exit,
  });
}

/** Pass an operation to the master that replaced this one: a signal as that signal, a request over its socket. */
export function passTo(to: number, req: Request, pids: string): Promise<unknown> {
  if (req.origin === 'signal' && req.sig) {
    try {
      process.kill(to, req.sig);
    } catch {
      /* it is gone: the keeper ends with it */
    }
    return Promise.resolve();
  }
  const { origin, sig, ...wire } = req;
  void origin;
  void sig;
  return askMaster(pids, to, wire as ControlRequest, 300_000);
}
