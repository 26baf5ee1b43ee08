// The addon behind one face (dist/shared/native.js): probe() native or JS, the reuseport sockets
// non-null where that strategy runs, and no fd left open when a socket step fails.
// Real sockets: the faults are injected around the real addon's calls.
import t from 'tap';
import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { DIST, skipRest } from './helpers/native-util';

type NativeModule = typeof import('../dist/shared/native.js');
type ReusePortModule = typeof import('../dist/listen/reuseport.js');

const mod = require(path.join(DIST, 'shared', 'native.js')) as NativeModule;
const { ReusePortListener } = require(path.join(DIST, 'listen', 'reuseport.js')) as ReusePortModule;
const skipNative = mod.native ? false : `addon not loaded: ${mod.loadError?.message.split('\n')[0]}`;

/** A binding that records every fd the real addon opened and closed, and fails where told. */
function recording(fail: { localPort?: boolean; listenCall?: number }) {
  const real = mod.reusePortSockets();
  const opened: number[] = [];
  const closed: number[] = [];
  const ports: number[] = [];
  let listens = 0;
  const binding = {
    ...real,
    listen(host: string, port: number, backlog: number, reusePort: boolean): number {
      if (++listens === fail.listenCall) throw Object.assign(new Error('injected: listen'), { code: 'EMFILE' });
      const fd = real.listen(host, port, backlog, reusePort);
      opened.push(fd);
      ports.push(real.localPort(fd));
      return fd;
    },
    localPort(fd: number): number {
      if (fail.localPort) throw Object.assign(new Error('injected: getsockname'), { code: 'ENOBUFS' });
      return real.localPort(fd);
    },
    close(fd: number): void {
      closed.push(fd);
      real.close(fd);
    },
  };
  return { binding, opened, closed, ports };
}

function isOpen(fd: number): boolean {
  try {
    fs.fstatSync(fd);
    return true;
  } catch {
    return false;
  }
}

t.test('ReusePortListener: localPort throwing closes the socket it just made', { skip: skipNative }, async (t) => {
  const r = recording({ localPort: true });
  const l = new ReusePortListener('127.0.0.1', 0, false, r.binding);
  t.throws(() => l.open(2), { message: 'injected: getsockname' });
  t.equal(r.opened.length, 1, 'one socket was made');
  t.same(r.closed, r.opened, 'and closed');
  t.notOk(isOpen(r.opened[0]), 'its fd is gone');
  t.equal(await mod.probe('127.0.0.1', r.ports[0]), null, 'its port is free again');
});

t.test('ReusePortListener: a later slot failing closes the earlier ones', { skip: skipNative }, async (t) => {
  const r = recording({ listenCall: 3 });
  const l = new ReusePortListener('127.0.0.1', 0, false, r.binding);
  t.throws(() => l.open(4), { message: 'injected: listen' });
  t.equal(r.opened.length, 2, 'slots 0 and 1 were made');
  t.same([...r.closed].sort(), [...r.opened].sort(), 'and closed');
  for (const fd of r.opened) t.notOk(isOpen(fd), `fd ${fd} is gone`);
  t.equal(await mod.probe('127.0.0.1', r.ports[0]), null, 'the port is free again');
  t.doesNotThrow(() => l.close(), 'close() after a failed open is harmless');
});

t.test('ReusePortListener: open, resize down, close: every fd closed', { skip: skipNative }, async (t) => {
  const r = recording({});
  const l = new ReusePortListener('127.0.0.1', 0, false, r.binding).open(3);
  t.equal(r.opened.length, 3);
  l.resize(1);
  t.same([...r.closed].sort(), r.opened.slice(1).sort(), 'the removed slots are closed');
  l.close();
  t.same([...r.closed].sort(), [...r.opened].sort(), 'all closed');
  t.equal(await mod.probe('127.0.0.1', l.port), null, 'the port is free again');
});

t.test('probe(): the addon and the fallback agree', async (t) => {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => server.close());
  const port = (server.address() as net.AddressInfo).port;
  const script = (p: number) =>
    `require(${JSON.stringify(path.join(DIST, 'shared', 'native.js'))}).probe('127.0.0.1', ${p}).then((e) => ` +
    `process.stdout.write(JSON.stringify(e && { code: e.code, syscall: e.syscall, message: e.message })))`;
  const run = (flag: string, p: number) =>
    new Promise<any>((resolve, reject) =>
      execFile(
        process.execPath,
        ['-e', script(p)],
        { env: { ...process.env, CLUSTER2_NATIVE: flag } },
        (err, out, errOut) => (err ? reject(new Error(`${err.message}\n${errOut}`)) : resolve(JSON.parse(out))),
      ),
    );
  const js = await run('0', port);
  t.match(js, { code: 'EADDRINUSE', syscall: 'listen' }, 'fallback: busy');
  if (!skipNative) {
    const nat = await run('1', port);
    t.same(
      nat,
      { code: 'EADDRINUSE', syscall: 'bind', message: `bind EADDRINUSE: address already in use 127.0.0.1:${port}` },
      'addon: busy, named in JS',
    );
  } else skipRest(t, skipNative);
  const free = await new Promise<number>((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const p = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(p));
    });
  });
  t.equal(await run('0', free), null, 'fallback: free');
});

t.test('without the addon: reusePortSockets() says why instead of returning null', async (t) => {
  const script =
    `const n = require(${JSON.stringify(path.join(DIST, 'shared', 'native.js'))});` +
    `try { n.reusePortSockets(); console.log('returned') } catch (e) { console.log(n.implementation, e.message) }`;
  const out = await new Promise<string>((resolve, reject) =>
    execFile(process.execPath, ['-e', script], { env: { ...process.env, CLUSTER2_NATIVE: '0' } }, (err, o) =>
      err ? reject(err) : resolve(o),
    ),
  );
  t.match(out.trim(), /^js cluster2: master-held SO_REUSEPORT sockets need the native addon/);
});
