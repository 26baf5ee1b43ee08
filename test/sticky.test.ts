// sticky: 'ip': every connection from one client address reaches the same
// worker, chosen by the kernel (a BPF program on the reuseport group). Real
// masters, workers and sockets; the clients bind local source addresses
// (127.0.0.0/8 is all on lo; IPv6 ones are added to lo for the test).
import t, { type Test } from 'tap';
import { execFile, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as net from 'node:net';
import * as path from 'node:path';
import { Cluster } from '../dist/index.js';
import { parseArgs } from '../dist/cli/args.js';
import { alive, startApp, tmpdir, until, type App } from './helpers/cluster';
import { request } from './helpers/http';
import { addonBuilt } from './helpers/native-util';

const skip = !(addonBuilt() && process.platform === 'linux') && 'needs the native addon on Linux';
const STICKY = { strategy: 'reuseport', sticky: 'ip', noWorkers: 2 };

const v4 = (from: number, n: number) =>
  Array.from({ length: n }, (_, i) => `127.0.${Math.floor((from + i) / 250)}.${((from + i) % 250) + 2}`);

/** The pid that answers a request on a fresh connection from `localAddress`. */
async function pidFor(port: number, localAddress: string, host = '127.0.0.1'): Promise<number> {
  const res = await request(port, '/', { host, localAddress, timeout: 20_000 });
  return Number(res.body.split(' ')[1]);
}

/** `per` connections from each address (the addresses in parallel): address -> the pids that answered. */
async function round(port: number, addrs: string[], per: number, host?: string): Promise<Map<string, Set<number>>> {
  const out = new Map<string, Set<number>>();
  await Promise.all(
    addrs.map(async (a) => {
      const seen = new Set<number>();
      for (let i = 0; i < per; i++) seen.add(await pidFor(port, a, host));
      out.set(a, seen);
    }),
  );
  return out;
}

/** pid -> slot of the workers that listen now. */
async function slots(app: App): Promise<Map<number, number>> {
  const st = await new Cluster({ pids: app.pids }).status();
  return new Map(st!.workers.filter((w) => w.state === 'listening').map((w) => [w.pid, w.slot]));
}

/**
 * The index the addon's program returns for an IPv4 address among n sockets
 * (native/cluster2.cc Sticky: Fibonacci hashing, top 16 bits scaled to n).
 * Equal to the slot when the group keeps its sockets in slot order.
 */
function programIndex(address: string, n: number): number {
  const v = address.split('.').reduce((a, b) => a * 256 + Number(b), 0);
  const h = Math.imul(v, 0x9e3779b9) >>> 0;
  return ((h >>> 16) * n) >>> 16;
}

/** The addresses for which `ok` is false (one assertion for all of them). */
const failing = (addrs: string[], ok: (a: string) => boolean) => addrs.filter((a) => !ok(a));

/** Each address reached one worker: address -> [pid, slot]. */
async function oneWorkerEach(t: Test, app: App, got: Map<string, Set<number>>): Promise<Map<string, [number, number]>> {
  const bySlot = await slots(app);
  const out = new Map<string, [number, number]>();
  const split = [...got].filter(([, pids]) => pids.size !== 1);
  t.same(
    split.map(([a, p]) => `${a}: ${[...p].join(',')}`),
    [],
    'every connection from one address reached the same worker',
  );
  for (const [a, pids] of got) {
    const pid = [...pids][0];
    out.set(a, [pid, bySlot.get(pid) ?? -1]);
  }
  return out;
}

t.test('16 addresses x 20 connections: one worker per address, across a reload and a respawn', { skip }, async (t) => {
  const app = await startApp(t, { opts: STICKY });
  const addrs = v4(0, 16);
  const first = await oneWorkerEach(t, app, await round(app.port, addrs, 20));
  const used = new Set([...first.values()].map(([, s]) => s));
  t.same([...used].sort(), [0, 1], 'both slots are used');
  t.same(
    failing(addrs, (a) => first.get(a)![1] === programIndex(a, 2)),
    [],
    "each address is on the slot the program computes (the group's order is the slots' order)",
  );

  // Reload: every worker replaced; each address keeps its slot, now with a new pid.
  const before = app.workers();
  app.send('reload');
  await app.waitFor('reload-ok', undefined, 60_000);
  await until(() => before.every((p) => !app.workers().includes(p)), 30_000, 'the old workers to exit');
  const reloaded = await oneWorkerEach(t, app, await round(app.port, addrs, 20));
  t.same(
    failing(addrs, (a) => reloaded.get(a)![1] === first.get(a)![1]),
    [],
    'after the reload every address keeps its slot',
  );
  t.same(
    failing(addrs, (a) => reloaded.get(a)![0] !== first.get(a)![0]),
    [],
    '... served by a new pid',
  );

  // Respawn: SIGKILL slot 0's worker; its replacement gets slot 0's addresses.
  const [victim] = [...(await slots(app))].find(([, s]) => s === 0)!;
  process.kill(victim, 'SIGKILL');
  await app.waitFor('died', (e) => e.args[0] === victim, 15_000);
  const heir = await until(
    async () => [...(await slots(app))].find(([p, s]) => s === 0 && p !== victim)?.[0],
    30_000,
    'slot 0 to be respawned',
  );
  const respawned = await oneWorkerEach(t, app, await round(app.port, addrs, 20));
  t.same(
    failing(addrs, (a) => respawned.get(a)![1] === first.get(a)![1]),
    [],
    'after the respawn every address keeps its slot',
  );
  const expected = (a: string) => (first.get(a)![1] === 0 ? heir : reloaded.get(a)![0]);
  t.same(
    failing(addrs, (a) => respawned.get(a)![0] === expected(a)),
    [],
    `slot 0's addresses reach the respawned worker ${heir}, slot 1's the same worker as before`,
  );
});

t.test('balance: 64 source addresses spread within 15% of even', { skip }, async (t) => {
  const app = await startApp(t, { opts: STICKY });
  const got = await oneWorkerEach(t, app, await round(app.port, v4(100, 64), 3));
  const perSlot = [0, 0];
  for (const [, slot] of got.values()) perSlot[slot]++;
  t.ok(
    perSlot.every((n) => Math.abs(n - 32) <= 32 * 0.15),
    `addresses per slot ${perSlot.join('/')} (each within 32 +- 15%)`,
  );
});

t.test('resize: the mapping changes; a resize down keeps new connections off the removed slot', { skip }, async (t) => {
  const app = await startApp(t, { opts: { ...STICKY, noWorkers: 3 } });
  const addrs = v4(200, 24);
  const three = await oneWorkerEach(t, app, await round(app.port, addrs, 3));
  t.same([...new Set([...three.values()].map(([, s]) => s))].sort(), [0, 1, 2], 'three slots used');
  const removed = [...(await slots(app))].find(([, s]) => s === 2)![0];
  app.send('resize 2');
  await app.waitFor('resize-ok');
  // From now on the program maps every address to slots 0..1, even while the removed worker drains.
  const two = await oneWorkerEach(t, app, await round(app.port, addrs, 5));
  t.notOk(
    [...two.values()].some(([pid]) => pid === removed),
    "no connection reached the removed slot's worker",
  );
  await app.waitFor('died', (e) => e.args[0] === removed, 30_000);
  const after = await oneWorkerEach(t, app, await round(app.port, addrs, 3));
  t.same(
    failing(addrs, (a) => after.get(a)![0] === two.get(a)![0]),
    [],
    'the new mapping holds once the removed worker is gone',
  );
  t.same(
    failing(addrs, (a) => three.get(a)![1] === programIndex(a, 3) && after.get(a)![1] === programIndex(a, 2)),
    [],
    'slots as the program computes them, before and after',
  );
});

/** Adds local IPv6 addresses to lo for the test (root on Linux); [] when the kernel or user does not allow it. */
async function localV6(t: Test, n: number): Promise<string[]> {
  const ip = (...args: string[]) => new Promise<boolean>((resolve) => execFile('ip', args, (err) => resolve(!err)));
  const prefix = `fd00:c2:16:${(process.pid % 0xffff).toString(16)}::`;
  const added: string[] = [];
  for (let i = 1; i <= n; i++) {
    const a = `${prefix}${i.toString(16)}`;
    if (!(await ip('-6', 'addr', 'add', `${a}/128`, 'dev', 'lo', 'nodad'))) break;
    added.push(a);
    t.teardown(() => ip('-6', 'addr', 'del', `${a}/128`, 'dev', 'lo').then(() => {}));
  }
  return added;
}

/** Can this machine listen on ::1 (IPv6 not disabled)? */
function hasIPv6(): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.once('error', () => resolve(false));
    s.listen({ host: '::1', port: 0 }, () => s.close(() => resolve(true)));
  });
}

t.test('IPv6: ::1 and other local addresses each reach one worker', { skip }, async (t) => {
  if (!(await hasIPv6())) {
    t.plan(0, 'no IPv6 on this machine (::1 cannot be bound)');
    return;
  }
  const extra = await localV6(t, 12);
  const app = await startApp(t, { opts: STICKY }); // all interfaces: a dual-stack socket
  const addrs = ['::1', ...extra];
  const got = await oneWorkerEach(t, app, await round(app.port, addrs, 10, '::1'));
  if (extra.length)
    t.same(
      [...new Set([...got.values()].map(([, s]) => s))].sort(),
      [0, 1],
      `both slots used by ${addrs.length} addresses`,
    );
  else t.comment('only ::1: this kernel or user cannot add IPv6 addresses to lo');
  // The same cluster, IPv4 clients on the same dual-stack socket.
  await oneWorkerEach(t, app, await round(app.port, v4(300, 4), 5));
  // A socket bound to ::1 alone.
  const v6only = await startApp(t, { opts: { ...STICKY, host: '::1' } });
  await oneWorkerEach(t, v6only, await round(v6only.port, addrs, 10, '::1'));
});

/** 20 socket.io clients (polling transport, each from its own address); resolves with the pid each one's 'whoami' got, or the error. */
async function socketIoClients(t: Test, port: number): Promise<(number | Error)[]> {
  const { io } = await import('socket.io-client');
  return Promise.all(
    v4(400, 20).map(
      (localAddress) =>
        new Promise<number | Error>((resolve) => {
          // A new connection per request (no keep-alive), from this client's address.
          const agent = new http.Agent({ keepAlive: false, localAddress } as http.AgentOptions);
          const s = io(`http://127.0.0.1:${port}`, {
            transports: ['polling'],
            reconnection: false,
            forceNew: true,
            agent: agent as never,
            timeout: 15_000,
          });
          t.teardown(() => {
            s.close();
          });
          let settled = false;
          const done = (v: number | Error) => {
            if (settled) return;
            settled = true;
            resolve(v);
            s.close();
          };
          const timer = setTimeout(() => done(new Error('no answer within 20 s')), 20_000);
          s.on('connect_error', (e: Error) => {
            clearTimeout(timer);
            done(e);
          });
          // Several round trips: each poll and each emit is its own HTTP request.
          s.on('connect', async () => {
            let pid = 0;
            try {
              for (let i = 0; i < 5; i++) pid = await s.timeout(10_000).emitWithAck('whoami');
              clearTimeout(timer);
              done(pid);
            } catch (e) {
              clearTimeout(timer);
              done(e as Error);
            }
          });
          s.on('disconnect', (reason: string) => {
            clearTimeout(timer);
            done(new Error(`disconnected: ${reason}`));
          });
        }),
    ),
  );
}

t.test(
  'socket.io with the polling transport: works through 2 workers with sticky, not without',
  { skip },
  async (t) => {
    const app = await startApp(t, { fixture: 'socketio-app.js', opts: STICKY });
    const results = await socketIoClients(t, app.port);
    const errors = results.filter((r) => r instanceof Error).map((e) => (e as Error).message);
    t.same(errors, [], 'every client connected and got its answers');
    t.equal(new Set(results).size, 2, 'the clients were spread over both workers');

    const plain = await startApp(t, { fixture: 'socketio-app.js', opts: { ...STICKY, sticky: false } });
    const without = await socketIoClients(t, plain.port);
    const failed = without.filter((r) => r instanceof Error);
    t.ok(
      failed.length > 0,
      `without sticky, ${failed.length} of 20 clients failed (the other worker does not know their session): ${[...new Set(failed.map((e) => (e as Error).message))].join('; ')}`,
    );
  },
);

t.test('sticky needs reuseport and the addon: refused before anything is forked', async (t) => {
  t.throws(() => new Cluster({ sticky: 'ip', strategy: 'round-robin' }), {
    name: 'TypeError',
    message:
      /option "sticky" is "ip" with option "strategy" "round-robin"; sticky needs strategy "reuseport" with the native addon/,
  });
  t.throws(() => new Cluster({ sticky: 'ip', strategy: 'shared' }), TypeError);
  t.throws(() => new Cluster({ sticky: 'cookie' as never }), {
    name: 'TypeError',
    message: /option "sticky" is "cookie"; it must be "ip"/,
  });
  t.throws(() => new Cluster({ sticky: true as never }), TypeError);
  t.equal(new Cluster({ sticky: false }).options.sticky, undefined, 'false is off');
  t.equal(new Cluster({}).options.sticky, undefined, 'off by default');
  t.equal(parseArgs(['start', 'app.js', '--sticky', 'ip']).options.sticky, 'ip', '--sticky ip');
  t.equal(parseArgs(['start', 'app.js', '--no-sticky']).options.sticky, false, '--no-sticky');
  t.throws(() => parseArgs(['start', 'app.js', '--sticky', 'yes']), /option "sticky" is "yes".*\(flag --sticky\)/);

  // Without the addon: one line on stderr, exit 78 (EX_CONFIG), no worker.
  const app = await startApp(t, { opts: { sticky: 'ip' }, env: { CLUSTER2_NATIVE: '0' }, listening: 0 });
  const { code } = await app.exited;
  t.equal(code, 78, 'exit code 78');
  t.match(
    app.stderr(),
    /^cluster2: option "sticky" is "ip"; it needs strategy "reuseport" with the native addon on Linux .*the native addon is not in use \(CLUSTER2_NATIVE=0\)\n$/,
  );
  t.notOk(
    app.events.some((e) => e.ev === 'forked'),
    'no worker was forked',
  );
});

t.test('the start-time check names what is missing', async (t) => {
  const { stickyProblem } = await import('../dist/master/sticky.js');
  type Addon = Parameters<typeof stickyProblem>[2];
  const can = { holdSockets: true, dup: true, sticky: true, quiesce: true, adopt: true };
  const full: Addon = { sys: { implementation: 'native', can }, loadError: null };
  const js: Addon['sys'] = { implementation: 'js', can: { ...can, holdSockets: false, sticky: false } };
  t.equal(
    stickyProblem({ sticky: undefined }, 'round-robin', { sys: js, loadError: null }),
    undefined,
    'off: nothing to check',
  );
  t.equal(stickyProblem({ sticky: 'ip' }, 'reuseport', full, 'linux'), undefined, 'reuseport with the addon: fine');
  const says = (strategy: string, addon: Addon, platform: string) =>
    stickyProblem({ sticky: 'ip' }, strategy as never, addon, platform)!.replace(/^.*, and /, '');
  t.equal(says('round-robin', { sys: js, loadError: null }, 'darwin'), 'this is darwin');
  t.equal(
    says('round-robin', { sys: js, loadError: new Error('cannot find build/Release') }, 'linux'),
    'the native addon is not in use (cannot find build/Release)',
  );
  t.equal(
    says('reuseport', { sys: { implementation: 'native', can: { ...can, sticky: false } }, loadError: null }, 'linux'),
    'the native addon in use has no sticky program (an older build: rebuild it)',
  );
  t.equal(says('reuseport-node', full, 'linux'), 'the strategy in use would be "reuseport-node"');
});

t.test('addon: sticky(fd, n) checks its arguments', { skip }, async (t) => {
  const { native } = await import('../dist/shared/native.js');
  const fd = native!.listen('127.0.0.1', 0, 511, true);
  t.teardown(() => native!.close(fd));
  t.throws(() => native!.sticky!(fd, 0), { code: 'ERR_OUT_OF_RANGE' });
  t.throws(() => native!.sticky!(fd, 65536), { code: 'ERR_OUT_OF_RANGE' });
  t.throws(() => native!.sticky!(-1, 2), { code: 'ERR_OUT_OF_RANGE' });
  t.doesNotThrow(() => native!.sticky!(fd, 65535));
  const plain = native!.listen('127.0.0.1', 0, 511, false);
  t.teardown(() => native!.close(plain));
  t.throws(
    () => native!.sticky!(plain, 2),
    { syscall: 'setsockopt' } as object as Error,
    'a socket without SO_REUSEPORT has no group',
  );
});

t.test('bench/sticky.js: a short run writes the throughput ratio and the balance', { skip }, async (t) => {
  const dir = tmpdir('c2-sticky-bench-');
  const file = path.join(dir, 'out.json');
  const proc = spawn(
    process.execPath,
    [path.join(__dirname, '..', 'bench', 'sticky.js'), '--duration', '1', '--repeats', '1', '--json', file],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  t.teardown(async () => {
    if (proc.exitCode === null && proc.signalCode === null) {
      proc.kill('SIGTERM'); // it stops its servers
      await until(() => proc.exitCode !== null || proc.signalCode !== null, 10_000, 'the bench to stop').catch(() =>
        proc.kill('SIGKILL'),
      );
    }
    fs.rmSync(dir, { recursive: true, force: true });
  });
  let stderr = '';
  proc.stderr!.on('data', (d) => {
    stderr += d;
  });
  const code = await new Promise((resolve) => proc.on('close', resolve));
  t.equal(code, 0, 'exit code 0', { stderr });
  const r = JSON.parse(fs.readFileSync(file, 'utf8'));
  t.ok(r.rps.plain > 0 && r.rps.sticky > 0 && r.ratio > 0, `req/s without ${r.rps.plain}, with ${r.rps.sticky}`);
  t.same(r.failed, { plain: 0, sticky: 0 }, 'no failed request');
  t.equal(r.balance.splitAddresses.sticky, 0, 'with sticky no address reached two workers');
  t.equal(
    r.balance.addressesPerWorker.reduce((a: number, b: number) => a + b, 0),
    64,
    '64 addresses counted',
  );
});

t.test(
  'through an upgrade: each address stays on its slot, 0 failed, served by the new workers after',
  { skip },
  async (t) => {
    const app = await startApp(t, { opts: STICKY });
    const addrs = v4(40, 12);
    const first = await oneWorkerEach(t, app, await round(app.port, addrs, 10));
    const oldSlot = await slots(app);
    // A sticky load from every address while the master is replaced: each answer is its slot's (old or new worker).
    const seen = new Map<string, Set<number>>(addrs.map((a) => [a, new Set<number>()]));
    const failed: string[] = [];
    let running = true;
    const loops = addrs.map(async (a) => {
      while (running) {
        await pidFor(app.port, a)
          .then((pid) => seen.get(a)!.add(pid))
          .catch((e: Error) => failed.push(`${a}: ${e.message}`));
      }
    });
    process.kill(app.pid, 'SIGUSR2');
    const neo = await until(
      async () => {
        const st = await new Cluster({ pids: app.pids }).status().catch(() => undefined);
        return st && st.pid !== app.pid && st.state === 'running' && st.pid;
      },
      60_000,
      'the new master to serve',
    );
    await until(() => [...oldSlot.keys()].every((p) => !alive(p)), 30_000, 'the old workers to go');
    const newSlot = await slots(app);
    running = false;
    await Promise.all(loops);
    t.same(failed, [], '0 failed through the upgrade');
    const slotOf = (pid: number) => oldSlot.get(pid) ?? newSlot.get(pid);
    t.same(
      failing(addrs, (a) => [...seen.get(a)!].every((p) => slotOf(p) === first.get(a)![1])),
      [],
      "every answer to an address came from its slot's worker, old or new",
    );
    const after = await oneWorkerEach(t, app, await round(app.port, addrs, 10));
    t.same(
      failing(addrs, (a) => after.get(a)![1] === first.get(a)![1] && newSlot.has(after.get(a)![0])),
      [],
      `after the upgrade every address keeps its slot, on a worker of master ${neo}`,
    );
  },
);
