import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

/**
 * The CPU limit of this process's cgroup, in CPUs (quota / period), or
 * undefined when there is none: cgroup v2 `cpu.max` ("200000 100000"; "max"
 * is no limit) and cgroup v1 `cpu.cfs_quota_us` / `cpu.cfs_period_us` (-1 is
 * no limit). Every level from the process's cgroup up to the mount's root is
 * read, and the smallest limit wins, as the kernel applies them. Node's
 * `availableParallelism()` ignores the quota on Node 20, so a container
 * limited to 2 CPUs on a 64-core host would otherwise get 64 workers.
 * `proc` is read for `cgroup` and `mountinfo` (a test points it elsewhere).
 */
export function cgroupCpuLimit(proc = '/proc/self'): number | undefined {
  let cgroups: string;
  let mounts: string;
  try {
    cgroups = fs.readFileSync(path.join(proc, 'cgroup'), 'utf8');
    mounts = fs.readFileSync(path.join(proc, 'mountinfo'), 'utf8');
  } catch {
    return undefined; // not Linux, or no /proc
  }
  let limit: number | undefined;
  const take = (l: number | undefined) => {
    if (l !== undefined && (limit === undefined || l < limit)) limit = l;
  };
  for (const line of cgroups.split('\n')) {
    // "0::/path" (v2), "4:cpu,cpuacct:/path" (v1)
    const m = /^\d+:([^:]*):(.*)$/.exec(line);
    if (!m) continue;
    const v2 = m[1] === '';
    if (!v2 && !m[1].split(',').includes('cpu')) continue;
    const mount = findMount(mounts, v2);
    if (!mount) continue;
    const rel = path.posix.relative(mount.root, m[2]);
    if (rel.startsWith('..')) continue; // the process's cgroup is outside what is mounted
    take(walk(mount.point, rel, v2 ? readV2 : readV1));
  }
  return limit;
}

interface Mount {
  root: string;
  point: string;
}

/** The cgroup2 mount, or the v1 mount that has the cpu controller. */
function findMount(mountinfo: string, v2: boolean): Mount | undefined {
  for (const line of mountinfo.split('\n')) {
    const dash = line.indexOf(' - ');
    if (dash < 0) continue;
    const [, , , root, point] = line.slice(0, dash).split(' ');
    const [fstype, , superOpts = ''] = line.slice(dash + 3).split(' ');
    if (v2 ? fstype === 'cgroup2' : fstype === 'cgroup' && superOpts.split(',').includes('cpu')) {
      return { root, point: point.replace(/\\040/g, ' ') };
    }
  }
  return undefined;
}

/** The smallest limit from `point/rel` up to `point`. */
function walk(point: string, rel: string, read: (dir: string) => number | undefined): number | undefined {
  let limit: number | undefined;
  for (let r = rel; ; r = path.posix.dirname(r)) {
    const l = read(path.join(point, r === '.' ? '' : r));
    if (l !== undefined && (limit === undefined || l < limit)) limit = l;
    if (r === '.' || r === '/' || r === '') break;
  }
  return limit;
}

function readFile(file: string): string | undefined {
  try {
    return fs.readFileSync(file, 'utf8').trim();
  } catch {
    return undefined;
  }
}

function ratio(quota: number, period: number): number | undefined {
  return quota > 0 && period > 0 ? quota / period : undefined;
}

function readV2(dir: string): number | undefined {
  const [q, p] = (readFile(path.join(dir, 'cpu.max')) ?? 'max').split(' ');
  return q === 'max' ? undefined : ratio(Number(q), Number(p ?? 100000));
}

function readV1(dir: string): number | undefined {
  const q = readFile(path.join(dir, 'cpu.cfs_quota_us'));
  const p = readFile(path.join(dir, 'cpu.cfs_period_us'));
  return q === undefined || p === undefined ? undefined : ratio(Number(q), Number(p));
}

/**
 * The default number of workers: the CPUs Node reports, capped by the cgroup's
 * CPU limit rounded down (at least 1), so workers are not throttled.
 */
export function defaultWorkers(proc?: string): number {
  const cpus = typeof os.availableParallelism === 'function' ? os.availableParallelism() : os.cpus().length;
  const limit = cgroupCpuLimit(proc);
  return limit === undefined ? cpus : Math.max(1, Math.min(cpus, Math.floor(limit)));
}
