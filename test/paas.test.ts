// Containers and PaaS: PORT and WEB_CONCURRENCY as defaults (API and CLI,
// explicit options and flags win), and the default worker count capped by the
// cgroup's CPU quota, read from fake trees and from a real cgroup.
import t, { type Test } from 'tap';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { cgroupCpuLimit, defaultWorkers } from '../dist/shared/cpu-quota.js';
import { resolveOptions } from '../dist/shared/options.js';
import { startApp, tmpdir, until } from './helpers/cluster';
import { startCli } from './helpers/cli';
import { request } from './helpers/http';

const { freePort } = require('./fixtures/monitor-ports.js') as { freePort: () => Promise<number> };

const cpus = os.availableParallelism();

/** A fake /proc/self (cgroup, mountinfo) and the cgroup files it points at. */
function fakeProc(
  cgroup: string,
  mounts: [root: string, point: string, fstype: string, opts: string][],
  files: Record<string, string>,
): string {
  const dir = tmpdir('c2cg-');
  fs.writeFileSync(path.join(dir, 'cgroup'), cgroup);
  fs.writeFileSync(
    path.join(dir, 'mountinfo'),
    mounts
      .map(
        ([root, point, fstype, opts], i) =>
          `${30 + i} 23 0:${28 + i} ${root} ${path.join(dir, point)} rw,relatime - ${fstype} ${fstype} ${opts}`,
      )
      .join('\n') + '\n',
  );
  for (const [f, v] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(dir, f)), { recursive: true });
    fs.writeFileSync(path.join(dir, f), v);
  }
  return dir;
}

t.test('cgroup CPU limits: v2 cpu.max and v1 cfs quota, the smallest level wins', async (t) => {
  const v2 = fakeProc('0::/kubepods/pod1/app\n', [['/', 'cg', 'cgroup2', 'rw']], {
    'cg/kubepods/cpu.max': 'max 100000\n',
    'cg/kubepods/pod1/cpu.max': '150000 100000\n',
    'cg/kubepods/pod1/app/cpu.max': 'max 100000\n',
  });
  t.equal(cgroupCpuLimit(v2), 1.5, "v2: the pod's 1.5 CPUs, from a level above the process's");
  t.equal(defaultWorkers(v2), 1, 'rounded down: 1 worker');
  const v2none = fakeProc('0::/a\n', [['/', 'cg', 'cgroup2', 'rw']], { 'cg/a/cpu.max': 'max 100000\n' });
  t.equal(cgroupCpuLimit(v2none), undefined, 'v2 "max": no limit');
  t.equal(defaultWorkers(v2none), cpus, 'no limit: the CPUs Node reports');
  // A container with its own cgroup namespace root (/docker/x mounted at the cgroup mount).
  const v1 = fakeProc(
    '12:cpu,cpuacct:/docker/x\n4:memory:/docker/x\n0::/\n',
    [
      ['/docker/x', 'cpu,cpuacct', 'cgroup', 'rw,cpu,cpuacct'],
      ['/', 'memory', 'cgroup', 'rw,memory'],
    ],
    {
      'cpu,cpuacct/cpu.cfs_quota_us': '300000\n',
      'cpu,cpuacct/cpu.cfs_period_us': '100000\n',
    },
  );
  t.equal(cgroupCpuLimit(v1), 3, "v1: cfs_quota_us / cfs_period_us, under the mount's root");
  const v1none = fakeProc('1:cpu:/\n', [['/', 'cpu', 'cgroup', 'rw,cpu']], {
    'cpu/cpu.cfs_quota_us': '-1\n',
    'cpu/cpu.cfs_period_us': '100000\n',
  });
  t.equal(cgroupCpuLimit(v1none), undefined, 'v1 -1: no limit');
  const tiny = fakeProc('0::/\n', [['/', 'cg', 'cgroup2', 'rw']], { 'cg/cpu.max': '20000 100000\n' });
  t.equal(defaultWorkers(tiny), 1, 'a fifth of a CPU: still 1 worker');
  t.equal(cgroupCpuLimit('/nonexistent'), undefined, 'no /proc: no limit');
});

t.test('PORT and WEB_CONCURRENCY are defaults; options win; bad values are refused', async (t) => {
  const saved = { PORT: process.env.PORT, WEB_CONCURRENCY: process.env.WEB_CONCURRENCY };
  t.teardown(() => {
    for (const [k, v] of Object.entries(saved))
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
  });
  process.env.PORT = '8123';
  process.env.WEB_CONCURRENCY = '5';
  const o = resolveOptions({});
  t.equal(o.port, 8123);
  t.equal(o.noWorkers, 5);
  const given = resolveOptions({ port: 0, noWorkers: 1 });
  t.equal(given.port, 0, 'port wins over PORT');
  t.equal(given.noWorkers, 1, 'noWorkers wins over WEB_CONCURRENCY');
  process.env.PORT = '';
  process.env.WEB_CONCURRENCY = ' ';
  t.equal(resolveOptions({}).port, 3000, 'empty PORT: 3000');
  t.equal(resolveOptions({}).noWorkers, defaultWorkers(), 'empty WEB_CONCURRENCY: the CPUs');
  process.env.PORT = 'http';
  t.throws(
    () => resolveOptions({}),
    new RangeError(
      'cluster2: environment variable PORT is "http"; it must be a port number from 0 to 65535 (0 picks a free port)',
    ),
  );
  t.equal(resolveOptions({ port: 1 }).port, 1, 'a bad PORT does not matter when port is given');
  delete process.env.PORT;
  process.env.WEB_CONCURRENCY = '0';
  t.throws(
    () => resolveOptions({}),
    /environment variable WEB_CONCURRENCY is "0"; it must be a whole number of workers from 1 to 1024/,
  );
});

t.test('API: a master started with PORT and WEB_CONCURRENCY only', async (t) => {
  const port = await freePort();
  // undefined drops the helper's port: 0 and noWorkers: 2 from the JSON options.
  const app = await startApp(t, {
    opts: { port: undefined, noWorkers: undefined },
    env: { PORT: String(port), WEB_CONCURRENCY: '3' },
    listening: 3,
  });
  t.equal(app.port, port, 'listens on PORT');
  t.equal(app.workers().length, 3, 'WEB_CONCURRENCY workers');
  t.match((await request(port, '/')).body, /^hello/);
});

t.test('CLI: PORT and WEB_CONCURRENCY, and flags win', async (t) => {
  const port = await freePort();
  const env = { PORT: String(port), WEB_CONCURRENCY: '3' };
  const pids = () => path.join(tmpdir('c2cli-'), 'pids');
  const a = await startCli(t, { defaults: false, args: ['--no-mon-port', '--pids', pids()], env });
  const ready = a.lines.find((l) => l.event === 'ready')!;
  t.same([ready.workers, ready.port], [3, port], 'ready: 3 workers on PORT');
  const b = await startCli(t, {
    defaults: false,
    args: ['--no-mon-port', '--pids', pids(), '--port', '0', '--workers', '1'],
    env,
  });
  const ready2 = b.lines.find((l) => l.event === 'ready')!;
  t.equal(ready2.workers, 1, '--workers wins');
  t.not(ready2.port, port, '--port wins');
});

/** A cgroup of our own under a controller's hierarchy, removed at the end; or why not. */
function makeCgroup(t: Tap, base: string, write: Record<string, string>): string {
  const dir = path.join(base, `c2-test-${process.pid}-${Math.random().toString(36).slice(2, 8)}`);
  fs.mkdirSync(dir);
  t.teardown(async () => {
    // The processes in it are killed by the other teardowns (registered later, run first).
    await until(
      () => fs.readFileSync(path.join(dir, 'cgroup.procs'), 'utf8').trim() === '',
      10_000,
      'the cgroup to empty',
    ).catch(() => {});
    try {
      fs.rmdirSync(dir);
    } catch {
      /* still busy */
    }
  });
  for (const [f, v] of Object.entries(write)) fs.writeFileSync(path.join(dir, f), v);
  return dir;
}
type Tap = Test;

/** Start `cluster2 start` with no worker count, inside the cgroup (a preload moves the master in before it reads anything). */
async function startIn(t: Tap, dir: string) {
  const preload = path.join(tmpdir('c2cg-'), 'join.js');
  fs.writeFileSync(
    preload,
    `require('node:fs').writeFileSync(${JSON.stringify(path.join(dir, 'cgroup.procs'))}, String(process.pid));\n`,
  );
  const s = await startCli(t, {
    defaults: false,
    args: ['--no-mon-port', '--port', '0', '--pids', path.join(tmpdir('c2cli-'), 'pids')],
    env: { NODE_OPTIONS: `--require ${preload}`, WEB_CONCURRENCY: '' },
  });
  const inside = fs.readFileSync(path.join(dir, 'cgroup.procs'), 'utf8').split('\n').map(Number);
  t.ok(inside.includes(s.pid), 'the master runs in the cgroup');
  return s.lines.find((l) => l.event === 'ready')!.workers as number;
}

const canCgroup = process.getuid?.() === 0 && process.platform === 'linux';
const V1 = '/sys/fs/cgroup/cpu';

/** Why the v1 test cannot run here, or false. */
function v1Skip(): string | false {
  if (!canCgroup || !fs.existsSync(path.join(V1, 'cpu.cfs_quota_us')))
    return `no cgroup v1 cpu hierarchy at ${V1} that this user can write (root on Linux needed)`;
  if (cpus < 2) return 'one CPU: a quota of one CPU would change nothing';
  return false;
}

/** The cgroup2 directory of this process, with the cpu controller enabled for its children; or why not. */
function v2Parent(): { dir: string } | { skip: string } {
  const mount = fs
    .readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .find((l) => / - cgroup2 /.test(l))
    ?.split(' ')[4];
  if (!canCgroup || !mount) return { skip: 'no cgroup2 mount, or not root on Linux' };
  if (cpus < 2) return { skip: 'one CPU: a quota of one CPU would change nothing' };
  const own = fs
    .readFileSync('/proc/self/cgroup', 'utf8')
    .split('\n')
    .find((l) => l.startsWith('0::'))!
    .slice(3);
  const dir = path.join(mount, own);
  const words = (f: string) =>
    fs
      .readFileSync(path.join(dir, f), 'utf8')
      .split(' ')
      .map((s) => s.trim());
  const controllers = words('cgroup.controllers');
  if (!controllers.includes('cpu')) {
    return {
      skip: `the cpu controller is not available in the cgroup2 hierarchy at ${dir} (bound to a cgroup v1 hierarchy on this machine; controllers: ${controllers.join(' ') || 'none'})`,
    };
  }
  if (!words('cgroup.subtree_control').includes('cpu')) {
    try {
      fs.writeFileSync(path.join(dir, 'cgroup.subtree_control'), '+cpu');
    } catch (e) {
      return { skip: `cannot enable the cpu controller in ${dir}/cgroup.subtree_control: ${(e as Error).message}` };
    }
  }
  return { dir };
}

t.test('a real cgroup v1 with a CPU quota: the worker count follows it', { skip: v1Skip() }, async (t) => {
  const dir = makeCgroup(t, V1, { 'cpu.cfs_period_us': '100000', 'cpu.cfs_quota_us': '100000' });
  t.equal(await startIn(t, dir), 1, `a quota of 1 CPU on ${cpus}: 1 worker`);
});

const v2 = v2Parent();
t.test(
  'a real cgroup v2 with cpu.max: the worker count follows it',
  { skip: 'skip' in v2 ? v2.skip : false },
  async (t) => {
    const dir = makeCgroup(t, (v2 as { dir: string }).dir, { 'cpu.max': '100000 100000' });
    t.equal(await startIn(t, dir), 1, `cpu.max of 1 CPU on ${cpus}: 1 worker`);
  },
);
