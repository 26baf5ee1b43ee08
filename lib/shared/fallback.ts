import { spawn } from 'node:child_process';
import * as net from 'node:net';
import type { System } from './system';

/**
 * The pure-JS face of lib/shared/system.ts, for where the addon cannot be built or
 * CLUSTER2_NATIVE=0 turns it off: Node binds the sockets (node:cluster, or the workers),
 * sd_notify goes through the systemd-notify command, and what needs a system call Node does
 * not offer says it cannot (`can`) or does nothing.
 */
export const jsSystem: System = {
  implementation: 'js',
  can: { holdSockets: false, dup: false, sticky: false, quiesce: false, adopt: false },
  listen: () => undefined,
  localPort: () => undefined,
  dup: (fd) => fd,
  close: () => {},
  steer: () => {},
  sticky: () => {},
  stopHandshakes: () => {},
  acceptQueue: () => null,
  notify: (_address, message) => notifyByCommand(message),
  setSubreaper: () => false,
  waitPid: () => undefined,
  probe: jsProbe,
};

/** sd_notify without the addon: the systemd-notify command (it sends from its own pid: NotifyAccess=all). */
export function notifyByCommand(message: string): void {
  const p = spawn('systemd-notify', message.split('\n'), { stdio: 'ignore' });
  p.on('error', () => {
    /* not installed: nothing to tell */
  });
}

/** A Node listen with exclusive: true (SO_REUSEADDR, never SO_REUSEPORT), closed at once. */
export function jsProbe(host: string, port: number): Promise<NodeJS.ErrnoException | null> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.once('error', (err: NodeJS.ErrnoException) => resolve(err));
    server.listen({ host: host === '' ? undefined : host, port, exclusive: true }, () => {
      server.close(() => resolve(null));
    });
  });
}
