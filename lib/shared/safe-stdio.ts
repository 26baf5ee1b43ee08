/**
 * Logging never kills the service. An error on stdout or stderr (EPIPE once
 * the reader is gone, as after `| head -1`; EIO from a closed terminal;
 * ENOSPC from a full disk) would be an unhandled 'error' event, which ends
 * the process. Here the first one is reported through `report` (the master
 * emits it as a warning, kept in the monitor's event log) and every later one
 * is swallowed: the output is lost, the service goes on.
 */
const guarded = new WeakSet<NodeJS.WriteStream>();

export function guardStdio(report: (message: string) => void): void {
  let reported = false;
  for (const [name, stream] of [
    ['stdout', process.stdout],
    ['stderr', process.stderr],
  ] as const) {
    if (guarded.has(stream)) continue;
    guarded.add(stream);
    stream.on('error', (e: NodeJS.ErrnoException) => {
      if (reported) return;
      reported = true;
      report(
        `cluster2: ${name} failed (${e.code ?? e.message}) in process ${process.pid}; ` +
          'its output is dropped from now on, the service goes on',
      );
    });
  }
}
