import * as fs from 'node:fs';
import { EXIT_CONFIG } from '../shared/exit-codes';
import { sys } from '../shared/native';
import { safeText } from '../shared/safe-text';
import { StartError } from '../shared/start-error';
import { judgeListenPid } from './listen-pid';

/**
 * Listening sockets this master did not open: handed over by the master it
 * replaces (`cluster2 upgrade`), or by systemd (socket activation). They are
 * adopted as they are: no bind, no port check, the port never closes.
 */
export interface Inherited {
  source: 'upgrade' | 'systemd';
  /** The app's sockets: one per reuseport slot (`reusePort`), or the one listening socket. */
  app: number[];
  /** The app sockets are a reuseport master's slot sockets. */
  reusePort: boolean;
  /** The app port (0: unknown, the options' port is used). */
  port: number;
  monitor?: number;
  monPort?: number;
  /** The metrics server's listening socket (option metrics) and its port. */
  metrics?: number;
  metricsPort?: number;
  /** upgrade: the pid of the master being replaced. */
  from?: number;
  /** upgrade: the replaced master's worker count, when it was scaled away from its noWorkers. */
  size?: number;
  /** upgrade: the replaced master's ECV state (a host taken out of rotation stays out). */
  ecv?: { enabled: boolean; since: number };
}

/** The environment variable naming what a new master inherits from the one it replaces. */
export const UPGRADE_ENV = 'CLUSTER2_UPGRADE';

/** What the old master writes into UPGRADE_ENV: descriptors are positions in the new master's table. */
export interface UpgradeHandoff {
  from: number;
  app: number[];
  reusePort: boolean;
  port: number;
  monitor?: number;
  monPort?: number;
  metrics?: number;
  metricsPort?: number;
  size?: number;
  ecv?: { enabled: boolean; since: number };
}

/** systemd passes sockets from descriptor 3 on (sd_listen_fds(3)). */
const SD_LISTEN_FDS_START = 3;

/**
 * A descriptor handed to this process is not close-on-exec (it came through
 * exec): every worker would inherit it. With the addon it is moved to a
 * close-on-exec copy; without, it stays (and leaks into workers, harmlessly:
 * they exit with the master).
 */
function own(fd: number): number {
  if (!sys.can.dup) return fd;
  const copy = sys.dup(fd);
  fs.closeSync(fd);
  return copy;
}

function portOf(fd: number): number {
  try {
    return sys.localPort(fd) ?? 0;
  } catch {
    return 0;
  }
}

/**
 * Read (and remove from the environment, so no worker or later master sees
 * them) the sockets handed to this process: an upgrade's, else systemd's when
 * LISTEN_PID names this process, or an ancestor that started it and whose
 * sockets reached it (lib/listen/listen-pid.ts). undefined when there are none;
 * a StartError (exit 78) when LISTEN_FDS is set for another process.
 */
export function takeInherited(env: NodeJS.ProcessEnv = process.env): Inherited | undefined {
  const handoff = env[UPGRADE_ENV];
  delete env[UPGRADE_ENV];
  if (handoff) {
    const h = JSON.parse(handoff) as UpgradeHandoff;
    return {
      source: 'upgrade',
      app: h.app.map(own),
      reusePort: h.reusePort,
      port: h.port,
      monitor: h.monitor === undefined ? undefined : own(h.monitor),
      monPort: h.monPort,
      metrics: h.metrics === undefined ? undefined : own(h.metrics),
      metricsPort: h.metricsPort,
      from: h.from,
      size: h.size,
      ecv: h.ecv,
    };
  }
  const n = Number(env.LISTEN_FDS);
  const listenPid = env.LISTEN_PID;
  const names = (env.LISTEN_FDNAMES ?? '').split(':');
  delete env.LISTEN_FDS;
  delete env.LISTEN_PID;
  delete env.LISTEN_FDNAMES;
  if (!(n > 0)) return undefined;
  // LISTEN_PID naming another process: an ancestor that started this master (sh -c), or refused (exit 78).
  const verdict = judgeListenPid(listenPid, SD_LISTEN_FDS_START, n);
  if (!verdict.ok) throw new StartError(`cluster2: ${verdict.reason}`, EXIT_CONFIG);
  if (verdict.note) process.stderr.write(`cluster2: ${verdict.note}\n`);
  const got: Inherited = { source: 'systemd', app: [], reusePort: false, port: 0 };
  for (let i = 0; i < n; i++) {
    const fd = own(SD_LISTEN_FDS_START + i);
    if (names[i] === 'monitor' && got.monitor === undefined) {
      got.monitor = fd;
      got.monPort = portOf(fd);
    } else if (got.app.length === 0) {
      got.app.push(fd);
      got.port = portOf(fd);
    } else {
      process.stderr.write(
        `cluster2: socket activation passed ${n} sockets; ` +
          `descriptor ${SD_LISTEN_FDS_START + i} (${safeText(names[i] || 'unnamed')}) is not used: ` +
          'one app socket and one named "monitor" are\n',
      );
      fs.closeSync(fd);
    }
  }
  return got;
}

/**
 * The strategy, given inherited sockets: reuseport needs one socket per worker,
 * so a single inherited socket (socket activation, or a round-robin or shared
 * master's) is served by round-robin instead, which is said at start.
 */
export function inheritedChoice<C extends { name: string; note?: string }>(
  choice: C,
  inh: Inherited | undefined,
): C | { name: 'round-robin'; note: string } {
  if (!inh || inh.app.length === 0 || (choice.name === 'reuseport' && inh.reusePort)) return choice;
  if (choice.name !== 'reuseport' && choice.name !== 'reuseport-node') return choice;
  const from =
    inh.source === 'systemd'
      ? 'was passed by systemd (socket activation)'
      : 'is inherited from the master this one replaces';
  return {
    name: 'round-robin',
    note:
      `cluster2: the app's listening socket ${from}; reuseport needs a socket per worker, ` +
      'so strategy "round-robin" serves on that socket instead',
  };
}

/**
 * One listening socket out of the inherited ones: a reuseport master's slot
 * sockets (an upgrade that changes the strategy) are steered to the first,
 * and the others closed here (the old master's workers empty their queues).
 */
export function oneSocket(inh: Inherited | undefined): number | undefined {
  if (!inh || inh.app.length === 0) return undefined;
  const [first, ...rest] = inh.app;
  if (rest.length) {
    try {
      sys.steer(first, 1);
    } catch {
      /* not a reuseport socket */
    }
    for (const fd of rest) fs.closeSync(fd);
  }
  return first;
}

/**
 * The inherited monitor and metrics sockets, each when this master serves on that port (or
 * port 0); closed otherwise (the new code moved it: it binds its own).
 */
export function serviceSockets(
  o: { monPort: number | false; metrics?: { port: number } },
  inh: Inherited | undefined,
): { monitor?: number; metrics?: number } {
  const keep = (fd: number | undefined, want: number | false | undefined, had: number | undefined) => {
    if (fd === undefined) return undefined;
    if (want !== false && want !== undefined && (want === 0 || !had || want === had)) return fd;
    fs.closeSync(fd);
    return undefined;
  };
  return {
    monitor: keep(inh?.monitor, o.monPort, inh?.monPort),
    metrics: keep(inh?.metrics, o.metrics?.port, inh?.metricsPort),
  };
}
