import t from 'tap';
import { spawn } from 'node:child_process';
import * as net from 'node:net';
import * as path from 'node:path';
import { alive, tmpdir, until } from './helpers/cluster';
import { request } from './helpers/http';

const root = path.join(__dirname, '..');

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const p = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(p));
    });
  });
}

async function run(t: Tap, file: string) {
  const [port, monPort] = [await freePort(), await freePort()];
  const cwd = tmpdir();
  const p = spawn(process.execPath, [path.join(root, 'examples', file)], {
    cwd,
    env: { ...process.env, PORT: String(port), MON_PORT: String(monPort) },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  p.stdout!.on('data', (d) => {
    out += d;
  });
  p.stderr!.on('data', (d) => {
    out += d;
  });
  t.teardown(() => {
    try {
      process.kill(p.pid!, 'SIGKILL');
    } catch {
      /* gone */
    }
  });
  return { p, port, cwd, out: () => out };
}
type Tap = { teardown(fn: () => void): void };

const connectable = (port: number) =>
  new Promise<boolean>((resolve) => {
    const s = net
      .connect(port, '127.0.0.1', () => {
        s.destroy();
        resolve(true);
      })
      .on('error', () => resolve(false));
  });

for (const [file, check] of [
  ['http.js', 'hello'],
  ['express/express-server.js', 'hello'],
  ['events.js', 'hello'],
  ['demo.js', 'hello from worker'],
] as const) {
  t.test(`examples/${file} runs as written and shuts down with examples/shutdown.js`, async (t) => {
    const { p, port, cwd, out } = await run(t, file);
    await until(() => connectable(port), 15_000, `${file} to listen`);
    await until(
      async () => (await request(port, '/').catch(() => ({ body: '' }))).body.includes(check),
      15_000,
      'an answer',
    );
    const r = await request(port, '/ecv');
    t.equal(r.status, 200, 'ECV answers');
    const sd = spawn(process.execPath, [path.join(root, 'examples', 'shutdown.js')], { cwd, stdio: 'pipe' });
    const code = await new Promise((resolve) => sd.once('exit', resolve));
    t.equal(code, 0, 'shutdown.js exits 0');
    await until(() => !alive(p.pid!), 10_000, 'the example to exit');
    if (file === 'events.js') t.match(out(), /Worker \d+ forked[\s\S]*Got SIGTERM - shutting down/);
  });
}

t.test('examples/net-echo.js echoes, and examples/stop.js stops it', async (t) => {
  const { p, port, cwd } = await run(t, 'net-echo.js');
  await until(() => connectable(port), 15_000, 'net-echo to listen');
  const echoed = await new Promise<string>((resolve, reject) => {
    let got = '';
    const s = net.connect(port, '127.0.0.1', () => s.write('ping\r\n'));
    s.on('data', (d) => {
      got += d;
      if (got.includes('ping')) {
        s.destroy();
        resolve(got);
      }
    });
    s.on('error', reject);
  });
  t.equal(echoed, 'hello\r\nping\r\n');
  const st = spawn(process.execPath, [path.join(root, 'examples', 'stop.js')], { cwd, stdio: 'pipe' });
  t.equal(await new Promise((resolve) => st.once('exit', resolve)), 0);
  await until(() => !alive(p.pid!), 10_000, 'net-echo to exit');
});

t.test('the ports each example reads from the environment are said in its header and in docs/api.md', async (t) => {
  // Each example binds the app port and the monitor's: run two at once, or beside another
  // service on 3001, and the second exits 69 unless both are given.
  const fs = await import('node:fs');
  const api = fs.readFileSync(path.join(root, 'docs', 'api.md'), 'utf8');
  const paragraph = api.slice(api.indexOf('`examples/` has'), api.indexOf('## Methods'));
  const files = ['http.js', 'events.js', 'net-echo.js', 'express/express-server.js', 'demo.js'];
  for (const file of files) {
    const source = fs.readFileSync(path.join(root, 'examples', file), 'utf8');
    const vars = [...new Set([...source.matchAll(/process\.env\.([A-Z_]+)/g)].map((m) => m[1]))];
    t.ok(vars.includes('MON_PORT'), `${file} reads MON_PORT`);
    const header = source.split('\n').slice(0, 4).join('\n');
    if (file !== 'demo.js') for (const v of vars) t.match(header, v, `${file}: its header names ${v}`);
    for (const v of vars) t.match(paragraph, `\`${v}\``, `docs/api.md's examples paragraph names ${v}`);
  }
});
