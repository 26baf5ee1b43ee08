import type { DrainReason } from '../shared/ipc';
import type { Instrumented } from './instrument';
import { CLOSE_GOING_AWAY, CLOSE_SERVICE_RESTART, closeWebSockets } from './websocket-close';

/** Handlers still running this long before the deadline are left: the process exits first, on its own. */
const HOOKS_MARGIN_MS = 50;

export interface DrainStart {
  reason: DrainReason;
  /** When the worker is cut (ms since the epoch). */
  deadline: number;
  warn(message: string): void;
  /** The app's onDrain handlers and 'drain' listeners, called (WorkerLife.runHooks): settled when they are. */
  hooks: Promise<void>;
}

/**
 * What a drain starts beside closing the listener and the HTTP/1.1
 * connections (drain.ts): the app's onDrain handlers, GOAWAY to every HTTP/2
 * session, and close frames for the WebSockets the app leaves open.
 * `settled(by)` resolves true once the handlers have settled, false if they
 * had not by the time `by` (ms since the epoch) or just before the deadline.
 */
export function startDrain(inst: Instrumented, o: DrainStart): { settled(by: number): Promise<boolean> } {
  const hooks = o.hooks;
  inst.h2?.drain();
  const leaving = o.reason === 'shutdown' || o.reason === 'master-gone';
  const stopClosing = closeWebSockets({
    sockets: () => inst.websockets(),
    code: leaving ? CLOSE_GOING_AWAY : CLOSE_SERVICE_RESTART,
    reason: leaving ? 'Going Away' : 'Service Restart',
    deadline: o.deadline,
    appDone: hooks,
  });
  return {
    settled(by: number) {
      let timer: NodeJS.Timeout | undefined;
      const at = Math.min(by, o.deadline - HOOKS_MARGIN_MS);
      const late = new Promise<boolean>((resolve) => {
        timer = setTimeout(() => resolve(false), Math.max(0, at - Date.now()));
      });
      return Promise.race([hooks.then(() => true), late]).finally(() => {
        clearTimeout(timer);
        stopClosing();
      });
    },
  };
}
