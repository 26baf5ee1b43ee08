// A stop, a SIGINT, a shutdown and a SIGKILL of either master at each moment of an upgrade
// (the new master starting; the old one handing over), under load: the chaos test's
// invariants hold (test/helpers/chaos/sequences.ts UPGRADE_MOMENTS).
import t from 'tap';
import { formatResult, killSequences, runSequence } from '../helpers/chaos/run';
import { UPGRADE_MOMENTS } from '../helpers/chaos/sequences';

t.setTimeout(UPGRADE_MOMENTS.length * 120_000);

// Every sequence kills what it started; this is for one a timeout cut short.
t.teardown(killSequences);

for (const r of UPGRADE_MOMENTS) {
  t.test(r.name, async (t) => {
    const res = await runSequence(r.scenario);
    t.same(
      res.violations.map((v) => `[${v.step}] ${v.invariant}: ${v.detail}`),
      [],
      `${r.source}\n${formatResult(res)}`,
    );
  });
}
