// Why a bind failed, in one line, and its exit code: the same wherever a bind of the start
// fails (the port check, the monitor, the metrics server, the single process).

import * as net from 'node:net';
import { EXIT_NOHOST, EXIT_NOPERM } from './exit-codes';
import { safeText } from './safe-text';
import { StartError } from './start-error';

export interface PortHolder {
  /** The numeric address probed; '' for all interfaces. */
  host: string;
  port: number;
  /** Why it cannot be bound: 'EADDRINUSE', 'EACCES', 'EADDRNOTAVAIL', ... */
  code: string;
  /** The process holding the port, when /proc tells. */
  pid?: number;
  /** Its command line (/proc/<pid>/cmdline, joined with spaces). */
  command?: string;
}

/** Errors of a bind that say the address cannot be had here (exit 68): not this machine's, no such name, wrong family. */
const NO_HOST = new Set([
  'EADDRNOTAVAIL',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EAI_FAIL',
  'EAI_NONAME',
  'EAFNOSUPPORT',
  'EINVAL',
]);

/**
 * The exit code of a bind that failed at start, the same wherever it happens (the port check,
 * the monitor, the metrics server, the single process): portBusyExitCode (69) only for a busy
 * port (EADDRINUSE), so a script that retries on it never retries what cannot succeed; 68 for an
 * address that is not this machine's or does not resolve; 77 for no permission (a port below
 * 1024); 1 for anything else.
 */
export function bindExitCode(code: string | undefined, portBusyExitCode: number): number {
  if (code === 'EADDRINUSE') return portBusyExitCode;
  if (code === 'EACCES' || code === 'EPERM') return EXIT_NOPERM;
  if (code !== undefined && NO_HOST.has(code)) return EXIT_NOHOST;
  return 1;
}

/** A failed bind of the start as its StartError: the line of formatBusy and the code of bindExitCode. */
export function bindFailure(h: PortHolder, portBusyExitCode: number): StartError {
  return new StartError(formatBusy(h), bindExitCode(h.code, portBusyExitCode));
}

/**
 * A listen of the start that failed (`what`: 'the monitor', 'the metrics server') as its
 * StartError: why, in words, and the code of bindExitCode.
 */
export function listenFailure(what: string, host: string, port: number, e: unknown, portBusyExitCode: number) {
  const err = e as NodeJS.ErrnoException;
  const code = err.code ?? '';
  const words = reasonOf(code, host);
  const reason = code === 'EADDRINUSE' ? 'the port is busy (EADDRINUSE)' : words ? `${words} (${code})` : '';
  return new StartError(
    oneLine(`cluster2: ${what} cannot listen on ${host}:${port}: ${reason || code || err.message}`),
    bindExitCode(err.code, portBusyExitCode),
  );
}

/** Why a bind of `host` failed with `code`, in words; undefined for a code without words here. */
function reasonOf(code: string, host: string): string | undefined {
  switch (code) {
    case 'EACCES':
      return 'permission denied (a port below 1024 needs root or CAP_NET_BIND_SERVICE)';
    case 'EPERM':
      return 'permission denied';
    case 'EADDRNOTAVAIL':
      return `the address ${host} is not on this machine`;
    case 'EAFNOSUPPORT':
      return `this machine has no ${net.isIPv6(host) ? 'IPv6' : 'such address family'}`;
    case 'ENOTFOUND':
      return `the host ${host} is not found`;
    case 'EAI_AGAIN':
      return `the lookup of ${host} failed`;
  }
  return undefined;
}

/**
 * One line for stderr, e.g.
 * `cluster2: port 3000 on 0.0.0.0 is busy (EADDRINUSE), held by pid 1234: node server.js`, or
 * `cluster2: cannot bind port 3000 on 192.0.2.1: the address 192.0.2.1 is not on this machine (EADDRNOTAVAIL)`.
 * The holder's command line (another process's text) has its control characters escaped.
 */
export function formatBusy(h: PortHolder): string {
  const where = `port ${h.port} on ${h.host === '' ? 'all interfaces' : h.host}`;
  if (h.code === 'EADDRINUSE') {
    let line = `cluster2: ${where} is busy (EADDRINUSE)`;
    if (h.pid !== undefined) line += `, held by pid ${h.pid}` + (h.command ? `: ${h.command}` : '');
    return oneLine(line);
  }
  const reason = reasonOf(h.code, h.host);
  return oneLine(`cluster2: cannot bind ${where}: ${reason ? `${reason} (${h.code})` : h.code}`);
}

function oneLine(s: string): string {
  return safeText(s.replace(/[\r\n]+/g, ' '));
}
