// The addon (native/cluster2.cc), loaded, and its face (lib/shared/system.ts):
//   sys                   the addon's face, or the pure-JS fallback's (lib/shared/fallback.ts)
//   probe(host, port)     is host:port bindable exclusively? (sys.probe)
//   reusePortSockets()    the master-held SO_REUSEPORT sockets; only the addon makes them
//   implementation        'native' or 'js', and loadError / fallbackNote() saying why
//
// The addon is found by node-gyp-build's own lookup: build/Release (compiled here), then the
// prebuild under prebuilds/<platform>-<arch>/ whose tags match this Node and libc (glibc or
// musl). CLUSTER2_NATIVE=0 forces the fallback; anything else (default 1) uses the addon
// when it loads.
// The addon throws system errors carrying only errno and syscall (and address, port); they
// are named here the way Node names its own (util.getSystemErrorName).

import * as path from 'node:path';
import * as util from 'node:util';
import { jsSystem } from './fallback';
import type { System } from './system';

export interface NativeBinding {
  /** A non-blocking, close-on-exec listening socket (SO_REUSEADDR, + SO_REUSEPORT when asked). Returns the fd. */
  listen(host: string, port: number, backlog: number, reusePort: boolean): number;
  /** Throws a Node-style error (code, errno, syscall, address, port) when host:port is not bindable exclusively. */
  probe(host: string, port: number): void;
  /** The local port of a socket (getsockname). */
  localPort(fd: number): number;
  close(fd: number): void;
  /** Linux: steer new connections of fd's SO_REUSEPORT group to its first n sockets (classic BPF). */
  steer?(fd: number, n: number): void;
  /**
   * Linux: steer each new connection of fd's SO_REUSEPORT group to one of its first n sockets picked
   * from the client's address.
   */
  sticky?(fd: number, n: number): void;
  /** Linux: drop every new SYN on this listening socket (a socket filter); handshakes under way still complete. */
  stopHandshakes?(fd: number): void;
  /**
   * Linux: a listening TCP socket's accept queue length; -1 for a TCP socket that is not listening;
   * null for anything else.
   */
  acceptQueue?(fd: number): number | null;
  /** A close-on-exec duplicate of fd (an addon built before it may lack it). */
  dup?(fd: number): number;
  /** One AF_UNIX datagram to a NOTIFY_SOCKET address (a path, or @name: abstract). */
  notify?(address: string, message: string): void;
  /** Linux: PR_SET_CHILD_SUBREAPER (lib/master/keeper.ts: masters of later upgrades are adopted). */
  setSubreaper?(): void;
  /** Non-blocking waitpid(2) of a child libuv did not spawn: null while it runs, else how it ended (signal: its number). */
  waitPid?(pid: number): { code: number | null; signal: number | null } | null;
}

const ROOT = path.join(__dirname, '..', '..');

/** The addon's system error (errno < 0, syscall, address?, port?) as Node shapes its own: code and message. */
function named(err: unknown): unknown {
  const e = err as NodeJS.ErrnoException & { address?: string; port?: number };
  if (!(e instanceof Error) || typeof e.errno !== 'number' || e.errno >= 0 || e.code !== undefined) return err;
  let code: string;
  let message: string;
  try {
    code = util.getSystemErrorName(e.errno);
    message = util.getSystemErrorMap().get(e.errno)?.[1] ?? code;
  } catch {
    code = `E${-e.errno}`;
    message = 'unknown error';
  }
  e.code = code;
  let where = '';
  if (e.address !== undefined) where = e.port !== undefined ? ` ${e.address}:${e.port}` : ` ${e.address}`;
  e.message = `${e.syscall} ${code}: ${message}${where}`;
  return e;
}

/** The raw addon with each function's system errors named. */
function face(raw: Record<string, unknown>): NativeBinding {
  const out: Record<string, unknown> = {};
  for (const [key, fn] of Object.entries(raw)) {
    if (typeof fn !== 'function') continue;
    out[key] = (...args: unknown[]) => {
      try {
        return (fn as (...a: unknown[]) => unknown)(...args);
      } catch (err) {
        throw named(err);
      }
    };
  }
  return out as unknown as NativeBinding;
}

function isBinding(x: unknown): x is Record<string, unknown> {
  const b = x as Partial<NativeBinding> | null;
  return (
    !!b &&
    typeof b.listen === 'function' &&
    typeof b.probe === 'function' &&
    typeof b.localPort === 'function' &&
    typeof b.close === 'function'
  );
}

function load(): { binding: NativeBinding | null; error: Error | null } {
  const flag = (process.env.CLUSTER2_NATIVE ?? '1').trim().toLowerCase();
  if (flag === '0' || flag === 'false' || flag === 'off' || flag === 'no') {
    return { binding: null, error: null };
  }
  try {
    const ngb = require('node-gyp-build') as { path(dir: string): string };
    const file = ngb.path(ROOT);
    const mod: unknown = require(file);
    if (!isBinding(mod)) throw new Error(`cluster2: ${file} is not the cluster2 addon (missing functions)`);
    return { binding: face(mod), error: null };
  } catch (err) {
    return { binding: null, error: err as Error };
  }
}

const loaded = load();

/** The addon (its errors named as Node's), or null when the pure-JS fallback is active. */
export const native: NativeBinding | null = loaded.binding;
/** Which implementation is active. */
export const implementation: 'native' | 'js' = loaded.binding ? 'native' : 'js';
/** Why the addon did not load (null when it loaded or when CLUSTER2_NATIVE=0 turned it off). */
export const loadError: Error | null = loaded.error;

/**
 * The one line a master prints at start when the addon should have been there and is not
 * (null when it loaded, or when CLUSTER2_NATIVE=0 asked for the fallback).
 */
export function fallbackNote(): string | null {
  if (!loadError) return null;
  const why = loadError.message.split('\n')[0].trim();
  return (
    `cluster2: the native addon is not in use (${why}); the pure-JS fallback runs ` +
    '(no master-held SO_REUSEPORT sockets); with a C++ compiler, make and python, `npm rebuild cluster2` builds it, ' +
    'and CLUSTER2_NATIVE=0 silences this'
  );
}

/** The master-held SO_REUSEPORT sockets: the addon's, non-null (throws when the addon is not in use). */
export function reusePortSockets(): NativeBinding {
  if (!native) {
    throw new Error(`cluster2: master-held SO_REUSEPORT sockets need the native addon (${implementation} in use)`);
  }
  return native;
}

/** The addon as lib/shared/system.ts's face; what an older build lacks falls back as the JS face does. */
function nativeSystem(n: NativeBinding): System {
  return {
    implementation: 'native',
    can: {
      holdSockets: true,
      dup: typeof n.dup === 'function',
      sticky: typeof n.sticky === 'function',
      quiesce: typeof n.stopHandshakes === 'function' && typeof n.acceptQueue === 'function',
      adopt: typeof n.setSubreaper === 'function' && typeof n.waitPid === 'function',
    },
    listen: (host, port, backlog, reusePort) => n.listen(host, port, backlog, reusePort),
    localPort: (fd) => n.localPort(fd),
    dup: (fd) => (n.dup ? n.dup(fd) : fd),
    close: (fd) => n.close(fd),
    steer: (fd, count) => n.steer?.(fd, count),
    sticky: (fd, count) => n.sticky?.(fd, count),
    stopHandshakes: (fd) => n.stopHandshakes?.(fd),
    acceptQueue: (fd) => (n.acceptQueue ? n.acceptQueue(fd) : null),
    notify: (address, message) => (n.notify ? n.notify(address, message) : jsSystem.notify(address, message)),
    setSubreaper: () => {
      if (!n.setSubreaper || !n.waitPid) return false;
      n.setSubreaper();
      return true;
    },
    waitPid: (pid) => (n.waitPid ? n.waitPid(pid) : undefined),
    probe: async (host, port) => {
      try {
        n.probe(host, port);
        return null;
      } catch (err) {
        return err as NodeJS.ErrnoException;
      }
    },
  };
}

/** The system face cluster2 uses (lib/shared/system.ts): the addon's, or the pure-JS fallback's. */
export const sys: System = native ? nativeSystem(native) : jsSystem;

/**
 * null when host:port (a numeric address, '' for all interfaces) can be bound exclusively,
 * else the error saying why: SO_REUSEADDR and no SO_REUSEPORT, through the addon, or a Node
 * listen with exclusive: true (which sets SO_REUSEADDR and never SO_REUSEPORT) without it.
 */
export function probe(host: string, port: number): Promise<NodeJS.ErrnoException | null> {
  return sys.probe(host, port);
}

function hasReusePort(version: string): boolean {
  const [major, minor] = version
    .replace(/^v/, '')
    .split('.')
    .map((n) => parseInt(n, 10));
  if (major > 23) return true;
  if (major === 23) return minor >= 1;
  if (major === 22) return minor >= 12;
  return false;
}

/** Node >= 22.12 (or 23.1+): `server.listen({ reusePort: true })` exists. */
export const nodeHasReusePort: boolean = hasReusePort(process.versions.node);
