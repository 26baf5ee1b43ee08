// The native addon (native/cluster2.cc) through dist/shared/native.js, on real sockets.
import t from 'tap';
import { execFile, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { ROOT, DIST, addonBuilt, hasIPv6, killPid, skipRest } from './helpers/native-util';
import { until } from './helpers/wait';

type NativeModule = typeof import('../dist/shared/native.js');

/** dist/shared/native.js with the addon allowed, whatever CLUSTER2_NATIVE says for this run. */
function loadNativeModule(): NativeModule {
  const file = require.resolve('../dist/shared/native.js');
  const saved = process.env.CLUSTER2_NATIVE;
  process.env.CLUSTER2_NATIVE = '1';
  delete require.cache[file];
  try {
    return require(file) as NativeModule;
  } finally {
    if (saved === undefined) delete process.env.CLUSTER2_NATIVE;
    else process.env.CLUSTER2_NATIVE = saved;
    delete require.cache[file];
  }
}

const mod = loadNativeModule();
const b = mod.native;
const skipNative = b ? false : `addon not loaded: ${mod.loadError?.message.split('\n')[0]}`;
const E = os.constants.errno;

/** Runs a script in a fresh node; returns its stdout parsed as JSON. */
function nodeJson(script: string, env: NodeJS.ProcessEnv): Promise<any> {
  return new Promise((resolve, reject) => {
    const child = execFile(
      process.execPath,
      ['-e', script],
      { env: { ...process.env, ...env }, timeout: 60000 },
      (err, stdout, stderr) => {
        if (err) reject(new Error(`${err.message}\n${stderr}`));
        else resolve(JSON.parse(stdout));
      },
    );
    child.stdin?.end();
  });
}

const REPORT = (dist: string) => `
const n = require(${JSON.stringify(path.join(dist, 'shared', 'native.js'))});
process.stdout.write(JSON.stringify({
  implementation: n.implementation,
  hasNative: n.native !== null,
  loadError: n.loadError ? n.loadError.message : null,
  nodeHasReusePort: n.nodeHasReusePort,
  loaded: Object.keys(require.cache).filter((k) => k.endsWith('.node')),
}));`;

function connectRead(host: string, port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    let data = '';
    const c = net.connect({ host, port });
    c.setEncoding('utf8');
    c.on('data', (d: string) => (data += d));
    c.on('end', () => resolve(data));
    c.on('error', reject);
  });
}

function serve(fd: number, name: string): Promise<net.Server> {
  return new Promise((resolve, reject) => {
    const s = net.createServer((socket) => socket.end(name));
    s.once('error', reject);
    s.listen({ fd }, () => resolve(s));
  });
}

function closeServer(s: net.Server): Promise<void> {
  return new Promise((resolve) => s.close(() => resolve()));
}

t.test('the addon loads, or the fallback is reported', async (t) => {
  const built = addonBuilt();
  const on = await nodeJson(REPORT(DIST), { CLUSTER2_NATIVE: '1' });
  t.equal(on.implementation, built ? 'native' : 'js', 'CLUSTER2_NATIVE=1');
  t.equal(on.hasNative, built);
  if (built) t.equal(on.loadError, null);
  else t.type(on.loadError, 'string', 'why the addon did not load');
  const dflt = await nodeJson(REPORT(DIST), { CLUSTER2_NATIVE: '' });
  t.equal(dflt.implementation, on.implementation, 'the addon is the default');
  const off = await nodeJson(REPORT(DIST), { CLUSTER2_NATIVE: '0' });
  t.equal(off.implementation, 'js', 'CLUSTER2_NATIVE=0');
  t.equal(off.hasNative, false);
  t.equal(off.loadError, null, 'forced off is not a load error');
  t.same(off.loaded, [], 'no .node file loaded');
});

t.test('nodeHasReusePort follows the Node version', async (t) => {
  const [major, minor] = process.versions.node.split('.').map(Number);
  const expected = major > 23 || (major === 23 && minor >= 1) || (major === 22 && minor >= 12);
  t.equal(mod.nodeHasReusePort, expected);
});

t.test(
  "load order: node-gyp-build's (build/Release, then the prebuild matching this libc)",
  { skip: skipNative },
  async (t) => {
    const source = Object.keys(require.cache).find((k) => k.endsWith('.node'));
    if (!source) return skipRest(t, 'cannot tell which .node file was loaded');
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'cluster2-native-'));
    t.teardown(() => fs.rmSync(tmp, { recursive: true, force: true }));
    fs.writeFileSync(path.join(tmp, 'package.json'), JSON.stringify({ name: 'cluster2' }));
    fs.mkdirSync(path.join(tmp, 'dist', 'shared'), { recursive: true });
    // native.js and what it loads (its face's interface, the JS fallback).
    for (const f of ['native.js', 'fallback.js', 'system.js'])
      fs.copyFileSync(path.join(DIST, 'shared', f), path.join(tmp, 'dist', 'shared', f));
    fs.symlinkSync(path.join(ROOT, 'node_modules'), path.join(tmp, 'node_modules'));
    const buildDir = path.join(tmp, 'build', 'Release');
    const preDir = path.join(tmp, 'prebuilds', `${process.platform}-${process.arch}`);
    const buildFile = path.join(buildDir, 'cluster2.node');
    // the names `npm run prebuild` (prebuildify --napi --tag-libc) gives; musl is what an Alpine build would be
    const glibc = path.join(preDir, 'cluster2.glibc.node');
    const musl = path.join(preDir, 'cluster2.musl.node');
    const run = (env: NodeJS.ProcessEnv = {}) =>
      nodeJson(REPORT(path.join(tmp, 'dist')), { CLUSTER2_NATIVE: '1', ...env });

    fs.mkdirSync(preDir, { recursive: true });
    fs.copyFileSync(source, musl);
    let r = await run({ LIBC: 'glibc' });
    t.equal(r.implementation, 'js', 'only a musl prebuild on glibc: not loaded');
    t.match(r.loadError, /No native build was found.*libc=glibc/);

    fs.copyFileSync(source, glibc);
    r = await run({ LIBC: 'glibc' });
    t.same([r.implementation, r.loaded], ['native', [glibc]], 'glibc: the glibc prebuild');
    r = await run({ LIBC: 'musl' });
    t.same([r.implementation, r.loaded], ['native', [musl]], 'musl: the musl prebuild');

    fs.mkdirSync(buildDir, { recursive: true });
    fs.copyFileSync(source, buildFile);
    r = await run();
    t.same([r.implementation, r.loaded], ['native', [buildFile]], 'compiled here (build/Release) wins');

    fs.rmSync(path.join(tmp, 'build'), { recursive: true });
    fs.writeFileSync(glibc, 'not an ELF file');
    r = await run({ LIBC: 'glibc' });
    t.equal(r.implementation, 'js', 'a broken prebuild: the fallback');
    t.match(r.loadError, /invalid ELF header|file too short/);

    fs.rmSync(path.join(tmp, 'prebuilds'), { recursive: true });
    r = await run();
    t.equal(r.implementation, 'js', 'nothing built: the fallback');
    t.match(r.loadError, /No native build was found/);
  },
);

t.test('listen with reusePort twice on one port: both sockets accept', { skip: skipNative }, async (t) => {
  const fd1 = b!.listen('127.0.0.1', 0, 511, true);
  const port = b!.localPort(fd1);
  const fd2 = b!.listen('127.0.0.1', port, 511, true);
  t.not(fd1, fd2);
  t.equal(b!.localPort(fd2), port);
  const s1 = await serve(fd1, 'one');
  t.teardown(() => closeServer(s1));
  const s2 = await serve(fd2, 'two');
  t.teardown(() => closeServer(s2));
  const seen = new Set<string>();
  let connections = 0;
  await until(
    async () => {
      seen.add(await connectRead('127.0.0.1', port));
      connections++;
      return seen.size === 2;
    },
    20_000,
    'both SO_REUSEPORT sockets to accept a connection',
  );
  t.same([...seen].sort(), ['one', 'two'], `both accepted (${connections} connections)`);
});

t.test(
  "steer(fd, n) sends new connections only to the group's first n sockets",
  { skip: skipNative || (process.platform !== 'linux' && 'Linux only') },
  async (t) => {
    const fd1 = b!.listen('127.0.0.1', 0, 511, true);
    const port = b!.localPort(fd1);
    const fd2 = b!.listen('127.0.0.1', port, 511, true);
    const s1 = await serve(fd1, 'one');
    t.teardown(() => closeServer(s1));
    const s2 = await serve(fd2, 'two');
    t.teardown(() => closeServer(s2));
    b!.steer!(fd1, 1);
    const seen = new Set<string>();
    for (let i = 0; i < 40; i++) seen.add(await connectRead('127.0.0.1', port));
    t.same([...seen], ['one'], 'steered to the first socket only');
    b!.steer!(fd1, 2);
    await until(
      async () => {
        seen.add(await connectRead('127.0.0.1', port));
        return seen.size === 2;
      },
      20_000,
      'the second socket to be back in rotation',
    );
    t.throws(() => b!.steer!(fd1, 0), { code: 'ERR_OUT_OF_RANGE' });
  },
);

t.test('without reusePort the second bind fails with EADDRINUSE', { skip: skipNative }, async (t) => {
  const fd = b!.listen('127.0.0.1', 0, 511, false);
  t.teardown(() => b!.close(fd));
  const port = b!.localPort(fd);
  for (const reuse of [false, true]) {
    const err = t.throws(() => b!.listen('127.0.0.1', port, 511, reuse)) as NodeJS.ErrnoException & {
      address?: string;
      port?: number;
    };
    t.equal(err.code, 'EADDRINUSE', `reusePort ${reuse}`);
    t.equal(err.syscall, 'bind');
    t.equal(err.errno, -E.EADDRINUSE, 'negative errno, as Node');
    t.equal(err.address, '127.0.0.1');
    t.equal(err.port, port);
    t.equal(err.message, `bind EADDRINUSE: address already in use 127.0.0.1:${port}`);
    t.ok(err instanceof Error);
  }
  // and the other way round: a SO_REUSEPORT holder keeps a plain bind (and the probe) out
  const rfd = b!.listen('127.0.0.1', 0, 511, true);
  t.teardown(() => b!.close(rfd));
  const rport = b!.localPort(rfd);
  t.throws(() => b!.listen('127.0.0.1', rport, 511, false), { code: 'EADDRINUSE', syscall: 'bind' });
  t.throws(() => b!.probe('127.0.0.1', rport), { code: 'EADDRINUSE', syscall: 'bind', port: rport });
  t.throws(() => b!.probe('', rport), { code: 'EADDRINUSE', syscall: 'bind' });
});

t.test('errors carry code, errno, syscall', { skip: skipNative }, async (t) => {
  t.throws(() => b!.listen('192.0.2.1', 0, 511, false), {
    code: 'EADDRNOTAVAIL',
    errno: -E.EADDRNOTAVAIL,
    syscall: 'bind',
    address: '192.0.2.1',
    port: 0,
    message: 'bind EADDRNOTAVAIL: address not available 192.0.2.1:0',
  });
  t.throws(() => b!.probe('192.0.2.1', 1234), { code: 'EADDRNOTAVAIL', syscall: 'bind', port: 1234 });
  t.throws(() => b!.close(1 << 30), { code: 'EBADF', errno: -E.EBADF, syscall: 'close' });
  t.throws(() => b!.localPort(1 << 30), { code: 'EBADF', syscall: 'getsockname' });
  const fileFd = fs.openSync(__filename, 'r');
  t.teardown(() => fs.closeSync(fileFd));
  t.throws(() => b!.localPort(fileFd), { code: 'ENOTSOCK', errno: -E.ENOTSOCK, syscall: 'getsockname' });
  // bad arguments are TypeErrors / RangeErrors, as in Node
  t.throws(() => b!.listen('not an address', 0, 511, false), { name: 'TypeError', code: 'ERR_INVALID_IP_ADDRESS' });
  t.throws(() => b!.probe('localhost', 0), { name: 'TypeError', code: 'ERR_INVALID_IP_ADDRESS' });
  t.throws(() => (b!.listen as any)(1, 0, 511, false), { name: 'TypeError', code: 'ERR_INVALID_ARG_TYPE' });
  t.throws(() => (b!.listen as any)('', 0, 511), { name: 'TypeError', code: 'ERR_INVALID_ARG_TYPE' });
  t.throws(() => b!.listen('', 65536, 511, false), { name: 'RangeError', code: 'ERR_SOCKET_BAD_PORT' });
  t.throws(() => b!.probe('', -1), { name: 'RangeError', code: 'ERR_SOCKET_BAD_PORT' });
  t.throws(() => b!.probe('', 1.5), { name: 'RangeError', code: 'ERR_SOCKET_BAD_PORT' });
  t.throws(() => b!.close(-1), { name: 'RangeError' });
  t.throws(() => (b!.localPort as any)('3'), { name: 'TypeError' });
});

t.test('localPort with port 0, and a wrapped server agrees', { skip: skipNative }, async (t) => {
  const fd = b!.listen('127.0.0.1', 0, 511, false);
  const port = b!.localPort(fd);
  t.ok(port > 0 && port < 65536, `got port ${port}`);
  const s = await serve(fd, 'x');
  t.teardown(() => closeServer(s));
  t.equal((s.address() as net.AddressInfo).port, port);
  t.equal(await connectRead('127.0.0.1', port), 'x');
});

t.test("'' listens on all interfaces, dual stack", { skip: skipNative }, async (t) => {
  const v6 = await hasIPv6();
  const fd = b!.listen('', 0, 511, true);
  const port = b!.localPort(fd);
  const s = await serve(fd, 'all');
  t.teardown(() => closeServer(s));
  t.equal((s.address() as net.AddressInfo).address, v6 ? '::' : '0.0.0.0');
  t.equal(await connectRead('127.0.0.1', port), 'all', 'IPv4');
  if (v6) t.equal(await connectRead('::1', port), 'all', 'IPv6');
  t.throws(() => b!.probe('', port), { code: 'EADDRINUSE' });
  t.throws(() => b!.probe('127.0.0.1', port), { code: 'EADDRINUSE' });
});

t.test('IPv6 ::1', { skip: skipNative }, async (t) => {
  if (!(await hasIPv6())) return skipRest(t, 'no IPv6 on this machine');
  const fd = b!.listen('::1', 0, 511, false);
  const port = b!.localPort(fd);
  const s = await serve(fd, 'six');
  t.teardown(() => closeServer(s));
  t.equal((s.address() as net.AddressInfo).address, '::1');
  t.equal(await connectRead('::1', port), 'six');
  t.throws(() => b!.listen('::1', port, 511, false), {
    code: 'EADDRINUSE',
    address: '::1',
    message: `bind EADDRINUSE: address already in use ::1:${port}`,
  });
  t.doesNotThrow(() => b!.probe('127.0.0.1', port), 'IPv4 loopback is another address');
});

t.test('probe: a free port does not throw and stays free', { skip: skipNative }, async (t) => {
  const fd = b!.listen('127.0.0.1', 0, 511, false);
  const port = b!.localPort(fd);
  b!.close(fd);
  t.doesNotThrow(() => b!.probe('127.0.0.1', port));
  t.doesNotThrow(() => b!.probe('127.0.0.1', port), 'probe released the port');
  t.doesNotThrow(() => b!.probe('', 0));
  const again = b!.listen('127.0.0.1', port, 511, false);
  t.equal(b!.localPort(again), port, 'the port is bindable after probes');
  b!.close(again);
});

t.test('close releases the socket', { skip: skipNative }, async (t) => {
  const fd = b!.listen('127.0.0.1', 0, 511, false);
  const port = b!.localPort(fd);
  t.throws(() => b!.probe('127.0.0.1', port), { code: 'EADDRINUSE' });
  b!.close(fd);
  t.throws(() => b!.localPort(fd), { code: 'EBADF' }, 'the fd is gone');
  t.doesNotThrow(() => b!.probe('127.0.0.1', port), 'the port is free again');
});

t.test(
  'sockets are CLOEXEC and non-blocking; a child does not inherit them',
  { skip: skipNative || (process.platform !== 'linux' && 'needs /proc') },
  async (t) => {
    const fd = b!.listen('127.0.0.1', 0, 511, true);
    t.teardown(() => b!.close(fd));
    const info = fs.readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8');
    const flags = parseInt(/^flags:\s*([0-7]+)/m.exec(info)![1], 8);
    t.ok(flags & 0o2000000, `O_CLOEXEC set (flags ${flags.toString(8)})`);
    t.ok(flags & 0o4000, 'O_NONBLOCK set');
    const link = fs.readlinkSync(`/proc/self/fd/${fd}`);
    t.match(link, /^socket:\[\d+\]$/);

    const child = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], { stdio: 'ignore' });
    const pid = child.pid!;
    t.teardown(() => killPid(pid));
    await new Promise<void>((resolve, reject) => {
      child.once('spawn', () => resolve());
      child.once('error', reject);
    });
    // After 'spawn' the child has exec'd node; read its descriptors.
    const links = await until(
      () => {
        try {
          return fs.readdirSync(`/proc/${pid}/fd`).map((f) => {
            try {
              return fs.readlinkSync(`/proc/${pid}/fd/${f}`);
            } catch {
              return '';
            }
          });
        } catch {
          return null;
        }
      },
      20_000,
      'the child to show its fds',
    );
    if (!links) throw new Error('unreachable');
    t.ok(links.length > 0, `child has ${links.length} fds`);
    t.notOk(links.includes(link), `the child did not inherit ${link}`);
  },
);

t.test(
  'acceptQueue counts what waits to be accepted; stopHandshakes lets no new one complete',
  {
    skip:
      skipNative ||
      (process.platform !== 'linux' && 'Linux only') ||
      (typeof b?.acceptQueue !== 'function' && 'an addon built before acceptQueue: rebuild it'),
  },
  async (t) => {
    const fd = b!.listen('127.0.0.1', 0, 511, false);
    let open = true;
    const closeFd = () => {
      if (open) {
        open = false;
        b!.close(fd);
      }
    };
    t.teardown(closeFd);
    const port = b!.localPort(fd);
    t.equal(b!.acceptQueue!(fd), 0, 'a new listener: empty queue');
    t.equal(b!.acceptQueue!(1), null, 'not a socket: null');
    const clients: net.Socket[] = [];
    t.teardown(() => {
      for (const c of clients) c.destroy();
    });
    const connect = () => {
      const c = net.connect(port, '127.0.0.1');
      clients.push(c);
      return new Promise<string>((resolve) => {
        c.once('connect', () => resolve('connected'));
        c.once('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? e.message));
      });
    };
    t.equal(await connect(), 'connected');
    t.equal(await connect(), 'connected');
    t.equal(b!.acceptQueue!(fd), 2, 'two completed connections wait in the queue');
    b!.stopHandshakes!(fd);
    let third = 'pending';
    const late = connect().then((r) => {
      third = r;
    });
    // Accept what was queued: exactly the two; then close, and the third, whose SYN was dropped, is refused.
    let accepted = 0;
    const server = net.createServer((s) => {
      accepted++;
      s.destroy();
    });
    server.listen({ fd });
    open = false;
    await until(() => accepted === 2 && b!.acceptQueue!(fd) === 0, 20_000, 'the queue to be accepted');
    t.equal(third, 'pending', 'the third client is not connected');
    await new Promise<void>((r) => server.close(() => r()));
    await late;
    t.equal(third, 'ECONNREFUSED', 'refused once the listener is closed, never reset');
  },
);
