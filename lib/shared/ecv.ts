import * as http from 'node:http';
import type * as net from 'node:net';
import * as os from 'node:os';
import type { FrontHandler } from './front';
import { isHttp2Response } from './front';
import type { ResolvedEcv } from './options';

/** Enabled/disabled and since when. The master owns it; workers hold a copy. */
export class EcvState {
  enabled = true;
  since = Date.now();
  private readonly waiters = new Set<() => void>();

  /**
   * Returns true when the state changed. Every call, a change or not, is an
   * answer from the owner that `when()` waits for (the master confirms the
   * state it keeps when it refuses a change).
   */
  set(enabled: boolean, since = Date.now()): boolean {
    const changed = enabled !== this.enabled;
    if (changed) {
      this.enabled = enabled;
      this.since = since;
    }
    for (const w of this.waiters) w();
    return changed;
  }

  /**
   * Resolves true once the state is `enabled` (at once if it is); false when
   * the owner answers with the other state, or after `ms`.
   */
  when(enabled: boolean, ms: number): Promise<boolean> {
    if (this.enabled === enabled) return Promise.resolve(true);
    return new Promise((resolve) => {
      const check = () => done(this.enabled === enabled);
      const done = (ok: boolean) => {
        clearTimeout(timer);
        this.waiters.delete(check);
        resolve(ok);
      };
      const timer = setTimeout(() => done(false), ms);
      this.waiters.add(check);
    });
  }
}

export type EcvStatus = 'AVAILABLE' | 'DISABLED' | 'WARNING';
const CODES: Record<EcvStatus, number> = { AVAILABLE: 200, DISABLED: 400, WARNING: 500 };

/** How long `ecv.validator` and the `ecv.monitor` path together may take before ECV reports WARNING. */
export const CHECK_TIMEOUT_MS = 1000;
/** How long a control request waits for the master to apply the change before answering 503. */
export const CONTROL_WAIT_MS = 2000;

const hostname = os.hostname();

/** '::ffff:127.0.0.1' -> '127.0.0.1' (an IPv4 client of a dual-stack socket). */
export function plainIp(address: string | undefined): string {
  if (!address) return '';
  return address.startsWith('::ffff:') && address.includes('.') ? address.slice(7) : address;
}

/** Where the `ecv.monitor` path is fetched. */
export interface Target {
  host: string;
  port: number;
  tls: boolean;
}

/** GET a path on the app; true when it answers < 300 within `timeout` ms. Never hangs, never throws. */
export function probeMonitor(target: Target, path: string, timeout = CHECK_TIMEOUT_MS): Promise<boolean> {
  return new Promise((resolve) => {
    let settled = false;
    // node:https only when the app serves TLS (a worker loads no more than it uses).
    const get = target.tls ? (require('node:https') as typeof import('node:https')).request : http.request;
    const req = get(
      {
        host: target.host,
        port: target.port,
        path,
        method: 'GET',
        agent: false,
        rejectUnauthorized: false,
        headers: { 'user-agent': 'cluster2-ecv', connection: 'close' },
      },
      (res) => finish((res.statusCode ?? 500) < 300),
    );
    const timer = setTimeout(() => finish(false), timeout);
    function finish(ok: boolean) {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      req.destroy();
      resolve(ok);
    }
    req.on('error', () => finish(false));
    req.end();
  });
}

/**
 * The validator, then the monitor path; false when either says unhealthy,
 * throws, or the two together take longer than `timeout` ms.
 */
export function healthy(ecv: ResolvedEcv, target: Target, timeout = CHECK_TIMEOUT_MS): Promise<boolean> {
  const started = Date.now();
  const checks = (async () => {
    if (ecv.validator && !(await ecv.validator())) return false;
    if (ecv.monitor) return probeMonitor(target, ecv.monitor, Math.max(1, timeout - (Date.now() - started)));
    return true;
  })().catch(() => false);
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<boolean>((resolve) => {
    timer = setTimeout(() => resolve(false), timeout);
  });
  return Promise.race([checks, late]).finally(() => clearTimeout(timer));
}

export function ecvBody(status: EcvStatus, ip: string, port: number): string {
  return (
    `status=${status}&ServeTraffic=${status === 'AVAILABLE'}&ip=${ip}&hostname=${hostname}` +
    `&port=${port}&time=${new Date().toString()}`
  );
}

/** The original's response: status code, headers (names, order and values as in its README) and body. */
export function writeEcv(
  res: http.ServerResponse,
  head: boolean,
  status: EcvStatus,
  since: number,
  ip: string,
  port: number,
): void {
  const body = ecvBody(status, ip, port);
  const headers: http.OutgoingHttpHeaders = {
    'X-Powered-By': 'Cluster2',
    'content-type': 'text/plain',
    since: new Date(since).toString(),
    'cache-control': 'no-cache',
    'content-length': Buffer.byteLength(body),
  };
  // The original closed the connection once disabled: the balancer's next check starts afresh.
  // (HTTP/2 has no such header: a response there must not carry one.)
  if (status === 'DISABLED' && !isHttp2Response(res)) headers.connection = 'close';
  res.writeHead(CODES[status], headers);
  res.end(head ? undefined : body);
}

function plain(res: http.ServerResponse, code: number, extra: http.OutgoingHttpHeaders = {}, body = ''): void {
  const headers: http.OutgoingHttpHeaders = { 'X-Powered-By': 'Cluster2', 'cache-control': 'no-cache', ...extra };
  if (isHttp2Response(res)) delete headers.connection;
  if (code !== 204) {
    headers['content-type'] = 'text/plain';
    headers['content-length'] = Buffer.byteLength(body);
  }
  res.writeHead(code, headers);
  res.end(code === 204 ? undefined : body);
}

/**
 * A request a page in a browser sent: a browser sends Origin with every POST
 * from a page, and Sec-Fetch-Site cross-site or same-site from another site.
 * The control routes are for balancers and scripts; refusing pages closes CSRF
 * and DNS-rebinding attacks from a page that a local browser opens. Node's
 * fetch (a preStop hook) sends `sec-fetch-mode: cors` and no Origin: a script.
 */
function fromBrowser(req: http.IncomingMessage): boolean {
  const h = req.headers;
  const site = h['sec-fetch-site'];
  return h.origin !== undefined || site === 'cross-site' || site === 'same-site';
}

/** Where ECV runs, when not on the app's own port. */
export interface EcvPlace {
  /** The port the body names (default: the port the request came in on). */
  port?: () => number;
  /** Where `ecv.monitor` is fetched (default: the address and port the request came in on, TLS if it came over TLS). */
  target?: (socket: net.Socket) => Target;
  /** false: nothing serves the app (no worker listens): WARNING. */
  serving?: () => boolean;
}

function ownTarget(socket: net.Socket): Target {
  return {
    host: socket.localAddress ?? '127.0.0.1',
    port: socket.localPort ?? 0,
    tls: (socket as { encrypted?: boolean }).encrypted === true,
  };
}

/**
 * The ECV routes, in front of the app on its own port (or on the monitor port):
 *   GET|HEAD <path>                   200 AVAILABLE / 400 DISABLED / 500 WARNING
 *   POST <path>/disable, /enable      204 (control: true, allowed addresses only; 403 otherwise)
 * `set` asks the owner of the state (the master) to change it, and returns
 * false if it refuses at once; the answer waits until the change has come
 * back, so a 204 means it is in force here, and a refusal is a 503.
 * Returns false for every other request, which the app then answers.
 */
export function createEcvFront(
  ecv: ResolvedEcv,
  state: EcvState,
  set: (enabled: boolean) => boolean | void,
  place: EcvPlace = {},
): FrontHandler {
  const path = ecv.path;
  const disable = `${path}/disable`;
  const enable = `${path}/enable`;
  const allow = new Set(ecv.allow.map(plainIp));
  const checked = ecv.validator !== undefined || ecv.monitor !== undefined;
  const portOf = place.port;
  const targetOf = place.target ?? ownTarget;
  // One health check at a time: concurrent ECV requests share its answer.
  let inflight: Promise<boolean> | null = null;
  const check = (socket: net.Socket) => {
    if (inflight === null)
      inflight = healthy(ecv, targetOf(socket)).finally(() => {
        inflight = null;
      });
    return inflight;
  };

  const owns = (url: string) => {
    if (!url.startsWith(path)) return false;
    const q = url.indexOf('?');
    const p = q === -1 ? url : url.slice(0, q);
    return p === path || (ecv.control && (p === disable || p === enable));
  };
  return Object.assign(
    (req: http.IncomingMessage, res: http.ServerResponse) => {
      const url = req.url!;
      if (!url.startsWith(path)) return false;
      const q = url.indexOf('?');
      const p = q === -1 ? url : url.slice(0, q);
      const socket = req.socket;
      if (p === path) {
        const method = req.method;
        if (method !== 'GET' && method !== 'HEAD') {
          plain(res, 405, { allow: 'GET, HEAD' }, 'method not allowed\n');
          return true;
        }
        const head = method === 'HEAD';
        const ip = plainIp(socket.localAddress);
        const port = portOf ? portOf() : (socket.localPort ?? 0);
        if (!state.enabled) {
          writeEcv(res, head, 'DISABLED', state.since, ip, port);
        } else if (place.serving && !place.serving()) {
          writeEcv(res, head, 'WARNING', state.since, ip, port);
        } else if (!checked) {
          writeEcv(res, head, 'AVAILABLE', state.since, ip, port);
        } else {
          void check(socket).then((ok) => {
            if (res.destroyed) return;
            // The state may have changed while the checks ran.
            const status: EcvStatus = !state.enabled ? 'DISABLED' : ok ? 'AVAILABLE' : 'WARNING';
            writeEcv(res, head, status, state.since, ip, port);
          });
        }
        return true;
      }
      if (!ecv.control || (p !== disable && p !== enable)) return false;
      if (!allow.has(plainIp(socket.remoteAddress)) || fromBrowser(req)) {
        plain(res, 403, {}, 'forbidden\n');
      } else if (req.method !== 'POST') {
        plain(res, 405, { allow: 'POST' }, 'method not allowed\n');
      } else {
        const enabled = p === enable;
        // false: the owner refused at once (a shutdown); otherwise wait for its answer.
        const applied = set(enabled) === false ? Promise.resolve(false) : state.when(enabled, CONTROL_WAIT_MS);
        void applied.then((ok) => {
          if (res.destroyed) return;
          if (ok) plain(res, 204, { since: new Date(state.since).toString(), connection: 'close' });
          else
            plain(
              res,
              503,
              { connection: 'close' },
              `the master did not ${enabled ? 'enable' : 'disable'} ECV (shutting down, or gone)\n`,
            );
        });
      }
      return true;
    },
    { owns },
  );
}
