// A shutdown serves every connection the kernel already accepted, run by
// test/shutdown-accepted-<strategy>.test.ts for each strategy. Only connections
// that arrive once the listener is closed may be refused; none is ever reset.
import type { Test } from 'tap';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { alive, startApp, until } from './cluster';
import { burst, type BurstResult } from './burst';

const ROOT = path.join(__dirname, '..', '..');

const show = (r: BurstResult) => JSON.stringify(r);

/** `new Cluster({ pids }).<op>()` from another script, as the original's test/lib/shutdown.js and stop.js. */
export function fromScript(pids: string, op: 'shutdown' | 'stop'): Promise<number | null> {
  const script = `new (require(${JSON.stringify(ROOT)}).Cluster)({ pids: ${JSON.stringify(pids)} }).${op}()`;
  const p = spawn(process.execPath, ['-e', script], { stdio: 'inherit' });
  return new Promise((resolve) => p.once('exit', (code) => resolve(code)));
}

export function scenarios(t: Test, strategy: string): void {
  // connThreshold is off so that no recycle meets the burst (its default is changing).
  const base =
    strategy === 'single' ? { cluster: false, connThreshold: 0 } : { strategy, connThreshold: 0, noWorkers: 2 };

  t.test('600 new connections, then SIGTERM at once: none reset or cut', async (t) => {
    const app = await startApp(t, { opts: base });
    const workers = app.workers();
    const b = burst(app.port, 600);
    // Once the client has issued every connect (the next turn of its loop).
    await new Promise((r) => setImmediate(r));
    process.kill(app.pid, 'SIGTERM');
    const r = await b.done;
    t.equal(r.reset, 0, `no ECONNRESET (${show(r)})`);
    t.equal(r.hangup, 0, `no socket hang up (${show(r)})`);
    t.same(r.other, {}, 'no other failure');
    t.equal(r.answered + r.refused, 600, 'each one answered, or refused');
    t.ok(r.answered > 0, `some were answered (${r.answered})`);
    t.equal((await app.exited).code, 0, 'master exits 0');
    await until(() => workers.every((w) => !alive(w)), 10_000, 'workers gone');
  });

  // A single process: this is the SIGTERM test above (there is no other process to signal).
  if (strategy !== 'single')
    t.test('600 new connections, then SIGTERM to every process (systemd): none reset or cut', async (t) => {
      const app = await startApp(t, { opts: base });
      const b = burst(app.port, 600);
      await new Promise((r) => setImmediate(r));
      // systemd's default KillMode (control-group) signals every process of the unit: the
      // master's process group (startApp made it lead one) and each worker's and the spare's.
      const spares = app.events.filter((e) => e.ev === 'spare').map((e) => e.args[0] as number);
      for (const group of new Set([app.pid, ...app.workers(), ...spares])) {
        try {
          process.kill(-group, 'SIGTERM');
        } catch {
          /* gone */
        }
      }
      const r = await b.done;
      t.equal(r.reset + r.hangup, 0, `none reset or cut (${show(r)})`);
      t.equal(r.answered + r.refused, 600, 'each one answered, or refused');
      t.equal((await app.exited).code, 0, 'master exits 0');
    });

  // drainDelay 1500, not 500: a SYN the kernel dropped because the accept queue (511) was
  // full is sent again about 1 s later, and must still find the listener open.
  t.test('600 new connections, then SIGTERM with drainDelay 1500: all answered', async (t) => {
    const app = await startApp(t, { opts: { ...base, drainDelay: 1500 } });
    const b = burst(app.port, 600);
    await new Promise((r) => setImmediate(r));
    process.kill(app.pid, 'SIGTERM');
    const r = await b.done;
    t.equal(r.answered, 600, `every one answered (${show(r)})`);
    t.equal((await app.exited).code, 0, 'master exits 0');
  });

  // In one process (single) the connections it serves are its own open sockets on the app
  // port: the wait for the accept queues once mistook them for hand-offs still to come and
  // held every shutdown with a kept-alive connection open for 5 s.
  t.test('20 idle kept-alive connections: SIGTERM does not wait on them as if queued', async (t) => {
    const app = await startApp(t, { opts: base });
    const sockets = await Promise.all(Array.from({ length: 20 }, () => keptAlive(app.port)));
    t.teardown(() => sockets.forEach((s) => s.destroy()));
    process.kill(app.pid, 'SIGTERM');
    t.equal((await app.exited).code, 0, 'master exits 0');
    const stalls = app.events.filter((e) => e.ev === 'warning' && /accept queues/.test(String(e.args[0])));
    t.same(stalls, [], 'no "nothing left the accept queues" warning');
  });

  t.test('2000 requests in flight, then shutdown() from another script: all answered', async (t) => {
    const app = await startApp(t, { opts: base });
    const b = burst(app.port, 2000, '/slow?ms=1000');
    // Every connection is complete (the kernel accepted it) before the shutdown.
    await b.connected;
    t.equal(await fromScript(app.pids, 'shutdown'), 0, 'the shutdown script exits 0');
    const r = await b.done;
    t.equal(r.answered, 2000, `every one answered (${show(r)})`);
    t.equal((await app.exited).code, 0, 'master exits 0');
    t.same(fs.readdirSync(app.pids), [], 'no pid file left');
  });
}

/** A connection that was answered once and stays open, idle (HTTP/1.1 keep-alive). */
function keptAlive(port: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1', () => s.write('GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n'));
    s.once('data', () => resolve(s));
    s.once('error', reject);
  });
}
