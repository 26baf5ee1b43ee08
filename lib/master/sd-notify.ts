import { sys } from '../shared/native';

/**
 * systemd's notify protocol (sd_notify(3)) for `Type=notify` services: when
 * NOTIFY_SOCKET is set, the master tells systemd READY=1, RELOADING=1,
 * STOPPING=1, STATUS=..., MAINPID=<pid> and WATCHDOG=1. Each message
 * is one AF_UNIX datagram, sent by the addon (Node has no API for datagrams on
 * a Unix socket); without the addon, through the `systemd-notify` command
 * (which sends from its own pid: the unit needs NotifyAccess=all).
 */
export class SdNotify {
  private readonly address = process.env.NOTIFY_SOCKET;
  private watchdog: NodeJS.Timeout | undefined;

  get enabled(): boolean {
    return !!this.address;
  }

  /** Send `KEY=value` lines (one datagram). Never throws: systemd being away must not stop the master. */
  send(...lines: string[]): void {
    if (!this.address || lines.length === 0) return;
    try {
      sys.notify(this.address, lines.join('\n'));
    } catch (e) {
      process.emitWarning(`cluster2: sd_notify to ${this.address} failed: ${(e as Error).message}`);
    }
  }

  /**
   * `mainPid`: the process systemd should follow. The process the user started stays the
   * main pid through upgrades (lib/master/keeper.ts): a master started by an upgrade names it.
   */
  ready(status: string, mainPid = process.pid): void {
    this.send('READY=1', `STATUS=${status}`, `MAINPID=${mainPid}`);
  }

  reloading(): void {
    this.send('RELOADING=1', `MONOTONIC_USEC=${process.hrtime.bigint() / 1000n}`, 'STATUS=reloading');
  }

  stopping(): void {
    this.stopWatchdog();
    this.send('STOPPING=1', 'STATUS=stopping');
  }

  /**
   * WATCHDOG=1 every half WATCHDOG_USEC (when it is set for this process),
   * from the master's own event loop: a master stuck in a loop stops them.
   */
  startWatchdog(): void {
    const usec = Number(process.env.WATCHDOG_USEC);
    const pid = process.env.WATCHDOG_PID;
    if (!this.address || !(usec > 0) || (pid && Number(pid) !== process.pid) || this.watchdog) return;
    this.send('WATCHDOG=1');
    this.watchdog = setInterval(() => this.send('WATCHDOG=1'), Math.max(1, Math.floor(usec / 2000)));
    this.watchdog.unref();
  }

  stopWatchdog(): void {
    clearInterval(this.watchdog);
    this.watchdog = undefined;
  }
}
