import * as fs from 'node:fs';
import * as path from 'node:path';

type DepType = 'prod' | 'dev' | 'optional' | 'peer';

export interface Dependency {
  name: string;
  type: DepType;
  /** The range package.json asks for. */
  wanted: string;
  /** The version the lockfile (or, without one, node_modules) has; null when it has none. */
  installed: string | null;
}

export interface LockedPackage {
  name: string;
  version: string;
  path: string;
  dev: boolean;
}

export interface DepsReport {
  root: string;
  name: string | null;
  version: string | null;
  /** Where the installed versions come from. */
  source: 'package-lock.json' | 'npm-shrinkwrap.json' | 'node_modules' | null;
  lockfileVersion: number | null;
  dependencies: Dependency[];
  /** How many packages the lockfile locks (the whole tree). */
  total: number;
  /** Direct dependencies with no installed version. */
  missing: string[];
  packages?: LockedPackage[];
  error?: string;
}

/**
 * The app's root: the nearest directory with a package.json above the main
 * script (process.argv[1]), or above the working directory when the script
 * is itself inside node_modules (a launcher such as the cluster2 command).
 */
export function appRoot(script = process.argv[1], cwd = process.cwd()): string {
  const starts: string[] = [];
  if (script && !script.split(path.sep).includes('node_modules')) starts.push(path.dirname(path.resolve(cwd, script)));
  starts.push(cwd);
  for (const start of starts) {
    for (let dir = start; ; dir = path.dirname(dir)) {
      if (fs.existsSync(path.join(dir, 'package.json'))) return dir;
      if (path.dirname(dir) === dir) break;
    }
  }
  return cwd;
}

const FIELDS: [string, DepType][] = [
  ['dependencies', 'prod'],
  ['devDependencies', 'dev'],
  ['optionalDependencies', 'optional'],
  ['peerDependencies', 'peer'],
];

interface Lock {
  lockfileVersion?: number;
  packages?: Record<string, { name?: string; version?: string; dev?: boolean; link?: boolean; resolved?: string }>;
  dependencies?: Record<string, { version?: string; dev?: boolean; dependencies?: Lock['dependencies'] }>;
}

async function readJson(file: string): Promise<{ data: unknown; mtime: number } | null> {
  try {
    const st = await fs.promises.stat(file);
    return { data: JSON.parse(await fs.promises.readFile(file, 'utf8')), mtime: st.mtimeMs };
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw e;
  }
}

/** Every package a lockfile locks, v1 (nested `dependencies`) or v2/v3 (`packages`). */
function lockedPackages(lock: Lock): LockedPackage[] {
  const out: LockedPackage[] = [];
  if (lock.packages) {
    for (const [p, v] of Object.entries(lock.packages)) {
      if (p === '' || !v || typeof v !== 'object') continue;
      const i = p.lastIndexOf('node_modules/');
      const name = v.name ?? (i === -1 ? p : p.slice(i + 'node_modules/'.length));
      const version = v.version ?? (v.link ? `link:${v.resolved ?? ''}` : '');
      out.push({ name, version, path: p, dev: v.dev === true });
    }
    return out;
  }
  const walk = (deps: Lock['dependencies'], prefix: string) => {
    for (const [name, v] of Object.entries(deps ?? {})) {
      const p = `${prefix}node_modules/${name}`;
      out.push({ name, version: v?.version ?? '', path: p, dev: v?.dev === true });
      if (v?.dependencies) walk(v.dependencies, `${p}/`);
    }
  };
  walk(lock.dependencies, '');
  return out;
}

/**
 * The app's dependencies read from its package.json and lockfile, never from
 * the npm CLI. Parsed again only when one of the files changed.
 */
export class Deps {
  private cache: { key: string; report: DepsReport; packages: LockedPackage[] } | null = null;

  constructor(readonly root: string = appRoot()) {}

  async report(all = false): Promise<DepsReport> {
    const key = await this.key();
    if (!this.cache || this.cache.key !== key) this.cache = { key, ...(await this.build()) };
    const { report, packages } = this.cache;
    return all ? { ...report, packages } : report;
  }

  private async key(): Promise<string> {
    const parts: string[] = [];
    for (const f of ['package.json', 'npm-shrinkwrap.json', 'package-lock.json']) {
      try {
        const st = await fs.promises.stat(path.join(this.root, f));
        parts.push(`${f}:${st.mtimeMs}:${st.size}`);
      } catch {
        parts.push(`${f}:-`);
      }
    }
    return parts.join('|');
  }

  private async build(): Promise<{ report: DepsReport; packages: LockedPackage[] }> {
    const root = this.root;
    const report: DepsReport = {
      root,
      name: null,
      version: null,
      source: null,
      lockfileVersion: null,
      dependencies: [],
      total: 0,
      missing: [],
    };
    let pkg: Record<string, unknown>;
    try {
      const read = await readJson(path.join(root, 'package.json'));
      if (!read) return { report: { ...report, error: 'no package.json' }, packages: [] };
      pkg = read.data as Record<string, unknown>;
    } catch (e) {
      return { report: { ...report, error: `package.json: ${(e as Error).message}` }, packages: [] };
    }
    report.name = typeof pkg.name === 'string' ? pkg.name : null;
    report.version = typeof pkg.version === 'string' ? pkg.version : null;

    let packages: LockedPackage[] = [];
    const top = new Map<string, string>();
    for (const file of ['npm-shrinkwrap.json', 'package-lock.json'] as const) {
      try {
        const read = await readJson(path.join(root, file));
        if (!read) continue;
        const lock = read.data as Lock;
        report.source = file;
        report.lockfileVersion = typeof lock.lockfileVersion === 'number' ? lock.lockfileVersion : null;
        packages = lockedPackages(lock);
        for (const p of packages) if (p.path === `node_modules/${p.name}`) top.set(p.name, p.version);
      } catch (e) {
        report.error = `${file}: ${(e as Error).message}`;
      }
      break;
    }

    for (const [field, type] of FIELDS) {
      const deps = pkg[field];
      if (!deps || typeof deps !== 'object') continue;
      for (const [name, wanted] of Object.entries(deps as Record<string, unknown>)) {
        let installed = top.get(name) ?? null;
        if (report.source === null || report.source === 'node_modules') {
          installed = await this.fromNodeModules(name);
          if (installed !== null) report.source = 'node_modules';
        }
        report.dependencies.push({ name, type, wanted: String(wanted), installed });
        if (installed === null && type !== 'peer' && type !== 'optional') report.missing.push(name);
      }
    }
    report.total = packages.length;
    return { report, packages };
  }

  private async fromNodeModules(name: string): Promise<string | null> {
    if (name.split('/').some((s) => s === '..' || s === '.')) return null;
    try {
      const read = await readJson(path.join(this.root, 'node_modules', name, 'package.json'));
      const v = (read?.data as { version?: unknown } | undefined)?.version;
      return typeof v === 'string' ? v : null;
    } catch {
      return null;
    }
  }
}
