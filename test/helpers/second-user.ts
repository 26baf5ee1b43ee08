// A real second local user for the security tests (issue #17): created with
// useradd when the tests run as root, acted as with runuser. skipReason() says
// why not where that is impossible.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';

export const OTHER_USER = 'c2adv';

let reason: string | null | undefined;

/** null when OTHER_USER exists (created now if need be) and runuser works; otherwise why not. */
export function skipReason(): string | null {
  if (reason !== undefined) return reason;
  reason = (() => {
    if (typeof process.getuid !== 'function' || process.getuid() !== 0)
      return 'needs root, to create and act as a second user';
    if (spawnSync('id', ['-u', OTHER_USER]).status !== 0) {
      const r = spawnSync('useradd', ['--system', '--no-create-home', '--shell', '/usr/sbin/nologin', OTHER_USER], {
        encoding: 'utf8',
      });
      if (r.status !== 0) return `useradd ${OTHER_USER} failed: ${r.error?.message ?? r.stderr}`;
    }
    const probe = spawnSync('runuser', ['-u', OTHER_USER, '--', 'id', '-u'], { encoding: 'utf8' });
    if (probe.status !== 0) return `runuser failed: ${probe.error?.message ?? probe.stderr}`;
    return null;
  })();
  return reason;
}

export function otherUid(): number {
  return Number(spawnSync('id', ['-u', OTHER_USER], { encoding: 'utf8' }).stdout.trim());
}

/** A clean environment: the test runner's hooks (NODE_OPTIONS) would write where that user may not. */
const clean = () => ['env', '-i', `PATH=${process.env.PATH}`];

/** Run a command as OTHER_USER to its end. */
export function asOther(args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync('runuser', ['-u', OTHER_USER, '--', ...clean(), ...args], { encoding: 'utf8', timeout: 60_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** Start a long-running command as OTHER_USER (runuser forks it: kill its group, and any pid it reports). */
export function spawnAsOther(args: string[], env: NodeJS.ProcessEnv = {}): ChildProcess {
  return spawn(
    'runuser',
    ['-u', OTHER_USER, '--', ...clean(), ...Object.entries(env).map(([k, v]) => `${k}=${v}`), ...args],
    {
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    },
  );
}

/** A fresh directory every user may read (mkdtemp makes 0700 ones). */
export function sharedDir(prefix: string, mode = 0o755): string {
  const dir = fs.mkdtempSync(`/tmp/${prefix}`);
  fs.chmodSync(dir, mode);
  return dir;
}
