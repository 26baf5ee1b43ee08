// The chaos property for fast-check: a generated sequence run against a real cluster holds
// every invariant. One seed draws one sequence (numRuns 1, unbiased: the whole range of
// gaps, lengths and configurations, not fast-check's small first values), so that
// `--seed S` replays it; a failure is shrunk to a minimal sequence (within a time budget),
// and `--path P` with the seed replays that minimal one directly.
import fc from 'fast-check';
import { formatResult, runSequence, type Result } from './run';
import { scenarioArb, type Scenario } from './scenario';

export class ChaosFailure extends Error {
  constructor(readonly result: Result) {
    super(formatResult(result));
  }
}

export interface SeedOutcome {
  seed: number;
  failed: boolean;
  /** The minimal failing sequence's result, and the path that replays it. */
  minimal?: Result;
  path?: string;
  /** Every sequence run for this seed (the first one, then the shrinking's). */
  runs: Result[];
  interrupted: boolean;
}

export interface SeedOptions {
  seed: number;
  /** Replays this counterexample path (from a failure's report) instead of the seed's first sequence. */
  path?: string;
  /** ms this seed may take, its shrinking included; 0: no shrinking (report the failing sequence as it is). */
  budgetMs: number;
  log?: (s: string) => void;
  /** Each sequence's result, as it finishes. */
  onRun?: (r: Result) => void;
}

export const PARAMS = { numRuns: 1, unbiased: true } as const;

export async function checkSeed(o: SeedOptions): Promise<SeedOutcome> {
  const runs: Result[] = [];
  let minimal: Result | undefined;
  const prop = fc.asyncProperty(scenarioArb, async (sc: Scenario) => {
    const r = await runSequence(sc, o.log);
    runs.push(r);
    o.onRun?.(r);
    if (r.violations.length) {
      minimal = r;
      throw new ChaosFailure(r);
    }
  });
  const details = await fc.check(prop, {
    ...PARAMS,
    seed: o.seed,
    path: o.path,
    endOnFailure: o.budgetMs === 0,
    skipAllAfterTimeLimit: o.budgetMs || undefined,
  });
  return {
    seed: o.seed,
    failed: details.failed,
    minimal: details.failed ? minimal : undefined,
    path: details.counterexamplePath ?? undefined,
    runs,
    interrupted: details.interrupted,
  };
}
