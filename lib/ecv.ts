import * as http from 'node:http';
import * as os from 'node:os';
import type { FrontHandler } from './worker/instrument';
import type { ResolvedEcv } from './options';

/** Enabled/disabled and since when. The master owns it; workers hold a copy. */
export class EcvState {
  enabled = true;
  since = Date.now();
  set(enabled: boolean, since = Date.now()): boolean {
    if (enabled === this.enabled) return false;
    this.enabled = enabled;
    this.since = since;
    return true;
  }
}

export type EcvStatus = 'AVAILABLE' | 'DISABLED' | 'WARNING';
const CODES: Record<EcvStatus, number> = { AVAILABLE: 200, DISABLED: 400, WARNING: 500 };

/** How long the `ecv.monitor` path may take before ECV reports WARNING. */
export const MONITOR_TIMEOUT_MS = 2000;

const hostname = os.hostname();

function isAllowed(allow: string[], address: string | undefined): boolean {
  return address !== undefined && allow.includes(address);
}

/** GET the app's own monitor path over the connection's local address; true when it answers < 300 in time. */
export function probeMonitor(address: string, port: number, path: string, timeout = MONITOR_TIMEOUT_MS): Promise<boolean> {
  return new Promise((resolve) => {
    const req = http.get({ host: address, port, path, timeout, agent: false, headers: { 'user-agent': 'cluster2-ecv' } }, (res) => {
      res.resume();
      resolve((res.statusCode ?? 500) < 300);
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', () => resolve(false));
  });
}

export async function healthy(ecv: ResolvedEcv, address: string, port: number): Promise<boolean> {
  try {
    if (ecv.validator && !(await ecv.validator())) return false;
  } catch {
    return false;
  }
  if (ecv.monitor) return probeMonitor(address, port, ecv.monitor);
  return true;
}

export function ecvBody(status: EcvStatus, ip: string, port: number): string {
  return `status=${status}&ServeTraffic=${status === 'AVAILABLE'}&ip=${ip}&hostname=${hostname}&port=${port}&time=${new Date().toString()}`;
}

export function writeEcv(res: http.ServerResponse, head: boolean, status: EcvStatus, since: number, ip: string, port: number): void {
  const body = ecvBody(status, ip, port);
  res.writeHead(CODES[status], {
    'X-Powered-By': 'Cluster2',
    'content-type': 'text/plain',
    since: new Date(since).toString(),
    'cache-control': 'no-cache',
    'content-length': Buffer.byteLength(body),
  });
  res.end(head ? undefined : body);
}

function plain(res: http.ServerResponse, code: number, extra: Record<string, string> = {}): void {
  res.writeHead(code, { 'X-Powered-By': 'Cluster2', 'cache-control': 'no-cache', 'content-length': 0, ...extra });
  res.end();
}

/**
 * The ECV routes, in front of the app on its own port:
 *   GET|HEAD <path>                   200 AVAILABLE / 400 DISABLED / 500 WARNING
 *   POST <path>/disable, /enable      204 (control: true, allowed addresses only)
 * `set` tells the master, which owns the state and tells every worker.
 */
export function createEcvFront(ecv: ResolvedEcv, state: EcvState, set: (enabled: boolean) => void): FrontHandler {
  const path = ecv.path;
  const disable = `${path}/disable`;
  const enable = `${path}/enable`;
  return (req, res) => {
    const url = req.url!;
    if (!url.startsWith(path)) return false;
    const q = url.indexOf('?');
    const p = q === -1 ? url : url.slice(0, q);
    const socket = req.socket;
    if (p === path) {
      const method = req.method;
      if (method !== 'GET' && method !== 'HEAD') {
        plain(res, 405, { allow: 'GET, HEAD' });
        return true;
      }
      const ip = socket.localAddress ?? '';
      const port = socket.localPort ?? 0;
      if (!state.enabled) {
        writeEcv(res, method === 'HEAD', 'DISABLED', state.since, ip, port);
      } else if (!ecv.validator && !ecv.monitor) {
        writeEcv(res, method === 'HEAD', 'AVAILABLE', state.since, ip, port);
      } else {
        void healthy(ecv, ip, port).then((ok) => {
          // The state may have changed while the checks ran.
          const status: EcvStatus = !state.enabled ? 'DISABLED' : ok ? 'AVAILABLE' : 'WARNING';
          writeEcv(res, method === 'HEAD', status, state.since, ip, port);
        });
      }
      return true;
    }
    if (!ecv.control || (p !== disable && p !== enable)) return false;
    if (req.method !== 'POST') {
      plain(res, 405, { allow: 'POST' });
    } else if (!isAllowed(ecv.allow, socket.remoteAddress)) {
      plain(res, 403);
    } else {
      const enabled = p === enable;
      state.set(enabled);
      set(enabled);
      plain(res, 204, { since: new Date(state.since).toString(), connection: 'close' });
    }
    return true;
  };
}
