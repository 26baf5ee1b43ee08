// The lifecycle chaos test (issue 24): random sequences of operations (reload, upgrade, scale,
// ECV, workers killed or stopped, the whole group stopped, every ending), each at a random
// moment, against a real cluster under load, every invariant checked after every step
// (test/helpers/chaos/). Here a bounded run: the fixed seeds, then a few new ones, within
// about 90 s; a failure prints the seed that replays it (`npm run chaos -- --seed S`, which
// also shrinks it to a minimal sequence).
import t from 'tap';
import { checkSeed } from './helpers/chaos/property';
import { formatResult } from './helpers/chaos/run';
import { FIXED_SEEDS } from './helpers/chaos/sequences';

/** New seeds per run, after the fixed ones. */
const NEW_SEEDS = 2;
/** No sequence starts after this (one takes 5 to 30 s): the whole test stays within about 90 s. */
const START_BEFORE_MS = 60_000;

t.test('random operation sequences hold every lifecycle invariant', async (t) => {
  const t0 = Date.now();
  const seeds = [...FIXED_SEEDS, ...Array.from({ length: NEW_SEEDS }, () => (Math.random() * 2 ** 31) | 0)];
  let ran = 0;
  for (const seed of seeds) {
    if (Date.now() - t0 > START_BEFORE_MS) {
      t.comment(`time budget used: seed ${seed} and after not run`);
      break;
    }
    const r = await checkSeed({ seed, budgetMs: 0 });
    ran++;
    t.notOk(
      r.failed,
      `seed ${seed}: replay and shrink with npm run chaos -- --seed ${seed}\n${r.minimal ? formatResult(r.minimal) : ''}`,
    );
  }
  t.ok(
    ran >= FIXED_SEEDS.length,
    `the fixed seeds ran (${ran} sequences in ${Math.round((Date.now() - t0) / 1000)} s)`,
  );
});
