// Never a black hole: all through a sequence, while a master says it is running (its status
// over the control socket) or the monitor's ECV says AVAILABLE, the app port must answer
// within 1 s. A miss counts only when it is seen twice in a row with the same master still
// saying so and no operation fired in between (an operation may end the service on purpose),
// and not while the test holds processes stopped (SIGSTOP).
import { alive } from '../cluster';
import { answers, askStatus, get } from './ask';
import { pidFiles } from './procs';
import type { Ctx } from './ops';
import type { Report } from './checks';

const ROUND_MS = 700;
const SAYS_RUNNING = ['running', 'reloading', 'upgrading'];

export interface Watch {
  stop(): Promise<void>;
  /** Rounds in which the port was probed. */
  probes: number;
}

export function watchBlackHole(ctx: Ctx, monitor: number | undefined, paused: () => boolean, report: Report): Watch {
  let running = true;
  let reported = false;
  const w: Watch = { stop, probes: 0 };
  const claim = async (): Promise<string | undefined> => {
    for (const pid of pidFiles(ctx.pids, 'master').filter(alive)) {
      const st = await askStatus(ctx.pids, pid, 800);
      if (!(st instanceof Error) && SAYS_RUNNING.includes(st.state)) return `master ${pid} says ${st.state}`;
    }
    if (monitor) {
      const r = await get(monitor, { path: '/ecv', timeout: 800 });
      if (!(r instanceof Error) && r.status === 200) return 'the monitor ECV says AVAILABLE';
    }
    return undefined;
  };
  const quiet = (from: number) => !paused() && !ctx.model.records.some((r) => r.at >= from);
  const loop = (async () => {
    while (running && !reported) {
      await new Promise((r) => setTimeout(r, ROUND_MS));
      if (!running || paused()) continue;
      const t0 = Date.now();
      const says = await claim();
      if (!says) continue;
      w.probes++;
      if (await answers(ctx.port, ctx.config.proto === 'tls')) continue;
      // Twice, with every probe address, and the claim still made: a black hole.
      if (!quiet(t0) || (await answers(ctx.port, ctx.config.proto === 'tls', 1000, 8))) continue;
      const again = await claim();
      if (again && quiet(t0)) {
        reported = true;
        report(
          'never a black hole',
          `${again}, and no connection to the app port ${ctx.port} answered within 1 s (twice)`,
        );
      }
    }
  })();
  async function stop() {
    running = false;
    await loop;
  }
  return w;
}
