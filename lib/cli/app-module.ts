import * as fs from 'node:fs';
import type * as http from 'node:http';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';
import type { ListenCallback } from '../worker/app-server';
import { isServerLike } from '../shared/server-like';
import { EXIT_CONFIG, EXIT_NOINPUT } from '../shared/exit-codes';
import { StartError } from '../shared/start-error';

/**
 * The APP of `cluster2 start APP`: where its module is, the options in the
 * package.json nearest to it, and the listen callback that loads it in a
 * worker. The master only resolves the path (a typo fails before any fork);
 * each worker loads the module afresh, so a reload runs the code on disk now.
 */

/** The module file of APP (a file, or a directory with package.json main / index.js). */
export function resolveApp(app: string, cwd = process.cwd()): string {
  const abs = path.resolve(cwd, app);
  try {
    return require.resolve(abs);
  } catch {
    throw new StartError(
      `cluster2: cannot find the app module ${JSON.stringify(app)} (looked for ${abs})`,
      EXIT_NOINPUT,
    );
  }
}

export interface PackageOptions {
  /** The package.json read. */
  file: string;
  options: Record<string, unknown>;
}

/** Options whose relative paths are taken from the package.json's directory. */
const PATH_OPTIONS = ['pids', 'logs'];

/**
 * The `cluster2` key of the package.json nearest to `dir` (that directory or
 * a parent), or undefined when the nearest package.json has none.
 */
export function packageOptions(dir: string): PackageOptions | undefined {
  for (let d = path.resolve(dir); ; d = path.dirname(d)) {
    const file = path.join(d, 'package.json');
    let text: string | undefined;
    try {
      text = fs.readFileSync(file, 'utf8');
    } catch {
      /* none here */
    }
    if (text !== undefined) {
      let pkg: { cluster2?: unknown };
      try {
        pkg = JSON.parse(text);
      } catch (e) {
        throw new StartError(`cluster2: cannot read ${file}: ${(e as Error).message}`, EXIT_CONFIG);
      }
      const o = pkg?.cluster2;
      if (o === undefined) return undefined;
      if (typeof o !== 'object' || o === null || Array.isArray(o)) {
        throw new StartError(
          `cluster2: the "cluster2" key of ${file} must be an object of options like { "port": 8080 }`,
          EXIT_CONFIG,
        );
      }
      const options = { ...(o as Record<string, unknown>) };
      for (const k of PATH_OPTIONS)
        if (typeof options[k] === 'string') options[k] = path.resolve(d, options[k] as string);
      return { file, options };
    }
    if (path.dirname(d) === d) return undefined;
  }
}

/** Options from package.json overridden by flags; ecv objects are merged key by key. */
export function mergeOptions(pkg: Record<string, unknown>, flags: Record<string, unknown>): Record<string, unknown> {
  const out = { ...pkg, ...flags };
  const a = pkg.ecv;
  const b = flags.ecv;
  if (a && typeof a === 'object' && b && typeof b === 'object') out.ecv = { ...a, ...b };
  return out;
}

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (typeof v === 'function') return `a function of ${v.length} parameter(s)`;
  if (typeof v === 'object')
    return (
      `an object (${(v as object).constructor?.name ?? 'Object'}) ` +
      `with keys ${Object.keys(v as object).join(', ') || '(none)'}`
    );
  return typeof v;
}

/** An ES module namespace or a transpiled module -> what it exports by default. */
function unwrap(ns: unknown): unknown {
  let v = ns;
  for (let i = 0; i < 2; i++) {
    if (v && typeof v === 'object' && !isServerLike(v) && 'default' in v) v = (v as { default: unknown }).default;
  }
  return v;
}

/**
 * The listen callback for APP: loads the module (CommonJS or ESM) and gives
 * its export to cluster2. A function with two or more parameters is a request
 * handler ((req, res), express's (req, res, next)); one with fewer is called
 * (with the listen callback's cb) and may return, resolve to, or cb() a server
 * or a handler. A koa app (an object with callback()) works too.
 */
export function appCallback(file: string): ListenCallback {
  return async (cb) => {
    const v = unwrap(await import(pathToFileURL(file).href));
    if (isServerLike(v)) return v;
    if (typeof v === 'function') {
      if (v.length >= 2) return v as http.RequestListener;
      return (v as ListenCallback)(cb);
    }
    if (v && typeof v === 'object' && typeof (v as { callback?: unknown }).callback === 'function') {
      return (v as { callback(): http.RequestListener }).callback();
    }
    throw new TypeError(
      `cluster2: ${file} must export a server, a request handler (req, res) or a function returning one; ` +
        `it exports ${describe(v)}`,
    );
  };
}
