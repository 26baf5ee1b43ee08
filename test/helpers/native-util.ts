// Shared by test/native.test.ts and test/port-probe.test.ts: real processes and sockets only.
import { execFile, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { procNetTcp } from '../../dist/service/port-probe.js';
import { PKG } from './package';
import { RUNTIME_EXEC } from './runtime';

export const ROOT = path.join(__dirname, '..', '..');
export const DIST = path.join(ROOT, 'dist');
export const HOLDER = path.join(ROOT, 'test', 'fixtures', 'holder.js');

/** The slice of tap's Test these helpers use. */
export interface Teardown {
  teardown(fn: () => unknown): void;
}

/** Marks the rest of a test as skipped (a skipped assertion, shown as # SKIP in the report). */
export function skipRest(t: { pass(message: string, extra: { skip: string }): unknown }, reason: string): void {
  t.pass('skipped', { skip: reason });
}

/** Is there a built addon (build/Release or prebuilds/<platform>-<arch>) for the package under test to load? */
export function addonBuilt(): boolean {
  const has = (dir: string) => {
    try {
      return fs.readdirSync(dir).some((f) => f.endsWith('.node'));
    } catch {
      return false;
    }
  };
  return (
    has(path.join(PKG, 'build', 'Release')) || has(path.join(PKG, 'prebuilds', `${process.platform}-${process.arch}`))
  );
}

export function killPid(pid: number | undefined): void {
  if (!pid) return;
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    // already gone
  }
}

export class NoReusePort extends Error {}

export interface Holder {
  pid: number;
  port: number;
}

/** Starts test/fixtures/holder.js; resolves once it holds the port. Killed (by pid) at teardown. */
export function startHolder(
  t: Teardown,
  mode: 'plain' | 'reuseport',
  host: string,
  port = 0,
  env: NodeJS.ProcessEnv = { ...process.env, CLUSTER2_NATIVE: '1' }, // the holder may use the addon, whatever this run says
): Promise<Holder> {
  const child = spawn(process.execPath, [HOLDER, mode, host === '' ? '*' : host, String(port)], {
    stdio: ['pipe', 'pipe', 'pipe'],
    env,
  });
  const pid = child.pid;
  t.teardown(() => killPid(pid));
  return new Promise((resolve, reject) => {
    let out = '';
    let err = '';
    const timer = setTimeout(() => {
      killPid(pid);
      reject(new Error(`holder ${mode} ${host}:${port} did not start in time: ${err}`));
    }, 30000);
    child.stdout.setEncoding('utf8');
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (d: string) => (err += d));
    child.stdout.on('data', (d: string) => {
      out += d;
      const nl = out.indexOf('\n');
      if (nl >= 0 && pid) {
        clearTimeout(timer);
        resolve({ pid, port: Number(out.slice(0, nl)) });
      }
    });
    child.on('exit', (code) => {
      clearTimeout(timer);
      if (code === 3) reject(new NoReusePort(err.trim()));
      else reject(new Error(`holder ${mode} ${host}:${port} exited with ${code}: ${err}`));
    });
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
  });
}

export interface ProbeResult {
  host: string;
  port: number;
  code: string;
  pid?: number;
  command?: string;
}

export interface ProbeRun {
  implementation: 'native' | 'js';
  loadError: string | null;
  results: Array<ProbeResult | null>;
  lines: Array<string | null>;
}

const PROBE_SCRIPT = `
const pp = require(process.env.C2_DIST + '/service/port-probe.js');
const be = require(process.env.C2_DIST + '/shared/bind-errors.js');
const nat = require(process.env.C2_DIST + '/shared/native.js');
(async () => {
  const queries = JSON.parse(process.env.C2_QUERIES);
  const results = [];
  for (const [h, p] of queries) results.push(await pp.probePort(h === null ? undefined : h, p));
  process.stdout.write(JSON.stringify({
    implementation: nat.implementation,
    loadError: nat.loadError ? nat.loadError.message : null,
    results,
    lines: results.map((r) => r && be.formatBusy(r)),
  }));
})().catch((e) => { console.error(e); process.exit(1); });
`;

/**
 * The environment for a child run as another user: without tap's coverage
 * hooks (NODE_OPTIONS), which would fail to write their report into a
 * directory that user cannot write.
 */
export function asAnotherUser(): NodeJS.ProcessEnv {
  const env = { ...process.env };
  delete env.NODE_OPTIONS;
  delete env.NODE_V8_COVERAGE;
  return env;
}

/** A runtime to run something with: `exec ...args script`. */
export interface RuntimeCommand {
  exec: string;
  args: string[];
}

let probeFile: string | undefined;

/**
 * Runs probePort for each [host, port] in a fresh process with CLUSTER2_NATIVE=flag: of the
 * runtime under test (node, or bun with CLUSTER2_TEST_RUNTIME=bun), or of `opts.runtime`
 * (which runs the probe script as a .cjs file: Deno runs a file, not -e, as CommonJS).
 */
export function runProbes(
  flag: '1' | '0',
  queries: Array<[string | undefined, number]>,
  opts: { uid?: number; gid?: number; runtime?: RuntimeCommand } = {},
): Promise<ProbeRun> {
  const json = JSON.stringify(queries.map(([h, p]) => [h === undefined ? null : h, p]));
  let args: string[];
  if (opts.runtime) {
    if (!probeFile) {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'c2-probe-'));
      process.once('exit', () => fs.rmSync(dir, { recursive: true, force: true }));
      probeFile = path.join(dir, 'probe.cjs');
      fs.writeFileSync(probeFile, PROBE_SCRIPT);
    }
    args = [...opts.runtime.args, probeFile];
  } else {
    args = ['-e', PROBE_SCRIPT];
  }
  const { runtime, ...ids } = opts;
  return new Promise((resolve, reject) => {
    const child = execFile(
      runtime?.exec ?? RUNTIME_EXEC,
      args,
      {
        env: {
          ...(opts.uid === undefined ? process.env : asAnotherUser()),
          CLUSTER2_NATIVE: flag,
          C2_DIST: DIST,
          C2_QUERIES: json,
        },
        timeout: 60000,
        ...ids,
      },
      (err, stdout, stderr) => {
        if (err) reject(new Error(`probe runner failed: ${err.message}\n${stderr}`));
        else resolve(JSON.parse(stdout) as ProbeRun);
      },
    );
    child.stdin?.end();
  });
}

/** A port that was free a moment ago on host (127.0.0.1 by default). */
export function freePort(host = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen({ host, port: 0 }, () => {
      const { port } = s.address() as net.AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

/** Can this machine listen on ::1? */
export function hasIPv6(): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.once('error', () => resolve(false));
    s.listen({ host: '::1', port: 0 }, () => s.close(() => resolve(true)));
  });
}

/** TCP states ('0A' LISTEN, '06' TIME_WAIT, ...) of sockets whose LOCAL port is port, from /proc/net/tcp{,6}. */
export function tcpStates(port: number): string[] {
  return procNetTcp()
    .filter((f) => f.length >= 4 && parseInt(f[1].split(':')[1], 16) === port)
    .map((f) => f[3]);
}

export const IMPLS: Array<'1' | '0'> = ['1', '0'];
