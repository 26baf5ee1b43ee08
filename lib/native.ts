// Loads the native addon (native/cluster2.cc) or reports why the pure-JS fallback is active.
//
// Order: prebuilds/<platform>-<arch>/ (made by `npm run prebuild`), then what node-gyp-build
// finds (build/Release, build/Debug, prebuilds). node-gyp-build alone would prefer build/ over
// prebuilds/, so the prebuilds directory is looked at here first.
// CLUSTER2_NATIVE=0 forces the fallback; anything else (default 1) uses the addon when it loads.

import * as fs from 'node:fs';
import * as path from 'node:path';

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
  /** A close-on-exec duplicate of fd (an addon built before it may lack it). */
  dup?(fd: number): number;
  /** One AF_UNIX datagram to a NOTIFY_SOCKET address (a path, or @name: abstract). */
  notify?(address: string, message: string): void;
}

interface Tuple {
  name: string;
  platform: string;
  architectures: string[];
}
interface Tags {
  file: string;
}
interface NodeGypBuild {
  (dir: string): unknown;
  path(dir: string): string;
  parseTuple?: (name: string) => Tuple | undefined;
  matchTuple?: (platform: string, arch: string) => (t: Tuple | undefined) => boolean;
  compareTuples?: (a: Tuple, b: Tuple) => number;
  parseTags?: (file: string) => Tags | undefined;
  matchTags?: (runtime: string, abi: string) => (t: Tags | undefined) => boolean;
  compareTags?: (runtime: string) => (a: Tags, b: Tags) => number;
}

const ROOT = path.join(__dirname, '..');

function readdir(dir: string): string[] {
  try {
    return fs.readdirSync(dir);
  } catch {
    return [];
  }
}

/** The best matching file under prebuilds/, chosen with node-gyp-build's own rules. */
function prebuildPath(ngb: NodeGypBuild, root: string): string | undefined {
  const { parseTuple, matchTuple, compareTuples, parseTags, matchTags, compareTags } = ngb;
  const dir = path.join(root, 'prebuilds');
  if (!parseTuple || !matchTuple || !compareTuples || !parseTags || !matchTags || !compareTags) {
    // An unexpected node-gyp-build: take prebuilds/<platform>-<arch>/*.node if there is one.
    const sub = path.join(dir, `${process.platform}-${process.arch}`);
    const file = readdir(sub).find((f) => f.endsWith('.node'));
    return file ? path.join(sub, file) : undefined;
  }
  const platform = process.env.npm_config_platform || process.platform;
  const arch = process.env.npm_config_arch || process.arch;
  const tuple = readdir(dir)
    .map(parseTuple)
    .filter(matchTuple(platform, arch))
    .sort((a, b) => compareTuples(a as Tuple, b as Tuple))[0];
  if (!tuple) return undefined;
  const sub = path.join(dir, tuple.name);
  const runtime = 'node';
  const winner = readdir(sub)
    .map(parseTags)
    .filter(matchTags(runtime, process.versions.modules))
    .sort((a, b) => compareTags(runtime)(a as Tags, b as Tags))[0];
  return winner ? path.join(sub, winner.file) : undefined;
}

function isBinding(x: unknown): x is NativeBinding {
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
  let ngb: NodeGypBuild;
  try {
    ngb = require('node-gyp-build') as NodeGypBuild;
  } catch (err) {
    return { binding: null, error: err as Error };
  }
  const candidates: Array<() => string> = [];
  const pre = (() => {
    // CLUSTER2_PREBUILD (node-gyp-build's own override) names the directory to load from.
    if (process.env.CLUSTER2_PREBUILD) return undefined;
    try {
      return prebuildPath(ngb, ROOT);
    } catch {
      return undefined;
    }
  })();
  if (pre) candidates.push(() => pre);
  candidates.push(() => ngb.path(ROOT));

  let firstError: Error | null = null;
  const tried = new Set<string>();
  for (const candidate of candidates) {
    try {
      const file = candidate();
      if (tried.has(file)) continue;
      tried.add(file);
      const mod: unknown = require(file);
      if (isBinding(mod)) return { binding: mod, error: null };
      throw new Error(`cluster2: ${file} is not the cluster2 addon (missing functions)`);
    } catch (err) {
      firstError ??= err as Error;
    }
  }
  return { binding: null, error: firstError ?? new Error('cluster2: native addon not found') };
}

const loaded = load();

/** The addon, or null when the pure-JS fallback is active. */
export const native: NativeBinding | null = loaded.binding;
/** Which implementation is active. */
export const implementation: 'native' | 'js' = loaded.binding ? 'native' : 'js';
/** Why the addon did not load (null when it loaded or when CLUSTER2_NATIVE=0 turned it off). */
export const loadError: Error | null = loaded.error;

function hasReusePort(version: string): boolean {
  const [major, minor] = version.replace(/^v/, '').split('.').map((n) => parseInt(n, 10));
  if (major > 23) return true;
  if (major === 23) return minor >= 1;
  if (major === 22) return minor >= 12;
  return false;
}

/** Node >= 22.12 (or 23.1+): `server.listen({ reusePort: true })` exists. */
export const nodeHasReusePort: boolean = hasReusePort(process.versions.node);
