import type { Test } from 'tap';
import type { App } from './cluster';

/**
 * A rolling restart behind a balancer: for each instance in turn, SIGTERM,
 * wait for a clean exit, start a new one on the same port, and wait until it
 * serves through the balancer again (`back`) before the next. `apps` is
 * updated in place, so the caller's view of the current instances follows.
 */
export async function rollingRestart(
  t: Test,
  apps: Record<string, App>,
  ports: Record<string, number>,
  start: (port: number) => Promise<App>,
  back: (app: App) => Promise<void>,
): Promise<void> {
  for (const which of Object.keys(apps)) {
    const old = apps[which];
    process.kill(old.pid, 'SIGTERM');
    t.equal((await old.exited).code, 0, `${which} shut down cleanly`);
    const neo = await start(ports[which]);
    apps[which] = neo;
    await back(neo);
    t.pass(`${which} restarted and back in rotation`);
  }
}
