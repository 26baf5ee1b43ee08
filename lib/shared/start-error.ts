import { EXIT_OSERR, exitProcess } from './exit-codes';
import { safeText } from './safe-text';

/**
 * A start that cannot go on: the library throws it, carrying the exit code;
 * only the entry points (the CLI, a `listen()` that nobody awaits) print its
 * one line and exit.
 */
export class StartError extends Error {
  override name = 'StartError';
  constructor(
    message: string,
    readonly exitCode: number,
  ) {
    super(message);
  }
}

/**
 * Print the failure as one line on stderr and exit with its code (EXIT_OSERR when it carries none). The
 * message may quote the app or the filesystem (an error, a path): its control characters are escaped.
 */
export function exitWith(e: unknown): never {
  const message = e instanceof Error ? e.message : String(e);
  const line = message.startsWith('cluster2: ') ? message : `cluster2: cannot start: ${message}`;
  try {
    process.stderr.write(`${safeText(line.replace(/\n/g, ' '))}\n`);
  } catch {
    /* stderr gone */
  }
  exitProcess(e instanceof StartError ? e.exitCode : EXIT_OSERR);
}

/**
 * The promise of a start, for those who await it. When nobody does (no
 * handler by the time the rejection would be reported), the failure is
 * printed and the process exits with its code, instead of silently staying
 * up or exiting 0. Other unhandled rejections behave as Node's default.
 */
export function exitUnlessAwaited<T>(inner: Promise<T>): Promise<T> {
  // eslint-disable-next-line prefer-const -- assigned once below, read by the handler defined first
  let outer!: Promise<T>;
  const onUnhandled = (reason: unknown, promise: Promise<unknown>) => {
    if (promise !== outer) {
      // Only we listen: keep Node's default (an uncaught exception) for the app's own rejections.
      if (process.listenerCount('unhandledRejection') === 1) throw reason;
      return;
    }
    exitWith(reason);
  };
  process.on('unhandledRejection', onUnhandled);
  outer = new Promise<T>((resolve, reject) => {
    inner.then(
      (v) => {
        process.off('unhandledRejection', onUnhandled);
        resolve(v);
      },
      (e: unknown) => {
        reject(e);
        // Unhandled rejections are reported before the next turn of the loop.
        setImmediate(() => process.off('unhandledRejection', onUnhandled));
      },
    );
  });
  return outer;
}
