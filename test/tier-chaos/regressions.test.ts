// Every bug the lifecycle chaos test found (and the seven issue 24 listed), each as its own
// fixed sequence against a real cluster under load: the sequence, the configuration and
// every invariant of the chaos test (test/helpers/chaos/).
import t from 'tap';
import { formatResult, killSequences, runSequence } from '../helpers/chaos/run';
import { REGRESSIONS } from '../helpers/chaos/sequences';

// Each sequence is bounded (every wait has its deadline); together they take longer than tap's default.
t.setTimeout(REGRESSIONS.length * 120_000);

// Every sequence kills what it started; this is for one a timeout cut short.
t.teardown(killSequences);

for (const r of REGRESSIONS) {
  t.test(r.name, async (t) => {
    const res = await runSequence(r.scenario);
    t.same(
      res.violations.map((v) => `[${v.step}] ${v.invariant}: ${v.detail}`),
      [],
      `${r.source}\n${formatResult(res)}`,
    );
  });
}
