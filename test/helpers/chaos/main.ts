// `npm run chaos -- --minutes N [--seed S [--path P]] [--shrink-minutes M] [--verbose]`:
// run chaos sequences against real clusters for N minutes (new seeds one after another), or
// replay one seed; print each failure's minimal sequence, its configuration and the seed (and
// path) that replays it, then the figures. Exit 1 when anything failed.
import fc from 'fast-check';
import { checkSeed, PARAMS, type SeedOutcome } from './property';
import { formatResult, killSequences, runSequence, type Result } from './run';
import { describe, scenarioArb, type Scenario } from './scenario';
import { DECIDE } from '../../../dist/master/lifecycle.js';

interface Args {
  /** Print the sequences these seeds draw (from the first, count of them) and run nothing. */
  show?: { from: number; count: number };
  /** One sequence given as JSON (as a failure's report prints it): run once, not shrunk. */
  scenario?: Scenario;
  minutes: number;
  seed?: number;
  path?: string;
  shrinkMinutes: number;
  verbose: boolean;
}

const USAGE =
  'usage: npm run chaos -- [--minutes N] [--seed S [--path P]] [--shrink-minutes M] [--verbose]\n' +
  '       npm run chaos -- --scenario JSON [--verbose]\n' +
  '       npm run chaos -- --show SEED [--count N]   (print the sequences of seeds SEED.., run nothing)';

function parse(argv: string[]): Args {
  const a: Args = { minutes: 10, shrinkMinutes: 4, verbose: false };
  for (let i = 0; i < argv.length; i++) {
    const k = argv[i];
    const v = argv[i + 1];
    const num = (what: string) => {
      const n = Number(v);
      if (v === undefined || !Number.isFinite(n) || n < 0)
        throw new Error(`${k} needs ${what}, got ${JSON.stringify(v)}\n${USAGE}`);
      i++;
      return n;
    };
    if (k === '--minutes') a.minutes = num('a number of minutes');
    else if (k === '--seed') a.seed = Math.trunc(num('an integer seed'));
    else if (k === '--shrink-minutes') a.shrinkMinutes = num('a number of minutes');
    else if (k === '--show') a.show = { from: Math.trunc(num('a seed')), count: a.show?.count ?? 1 };
    else if (k === '--count') a.show = { from: a.show?.from ?? 0, count: Math.max(1, Math.trunc(num('a count'))) };
    else if (k === '--scenario') {
      try {
        a.scenario = JSON.parse(v ?? '');
      } catch {
        throw new Error(`--scenario needs a sequence as JSON, got ${JSON.stringify(v)}\n${USAGE}`);
      }
      i++;
    } else if (k === '--path') {
      if (!v || !/^[\d:]+$/.test(v))
        throw new Error(`--path needs a counterexample path like 0:1:3, got ${JSON.stringify(v)}\n${USAGE}`);
      a.path = v;
      i++;
    } else if (k === '--verbose') a.verbose = true;
    else if (k === '--help' || k === '-h') {
      process.stdout.write(`${USAGE}\n`);
      process.exit(0);
    } else throw new Error(`unknown argument ${JSON.stringify(k)}\n${USAGE}`);
  }
  if (a.path !== undefined && a.seed === undefined) throw new Error(`--path needs --seed\n${USAGE}`);
  return a;
}

const out = (s: string) => process.stdout.write(`${s}\n`);

async function main(): Promise<number> {
  let args: Args;
  try {
    args = parse(process.argv.slice(2));
  } catch (e) {
    process.stderr.write(`chaos: ${(e as Error).message}\n`);
    return 64;
  }
  if (args.show) {
    for (let seed = args.show.from; seed < args.show.from + args.show.count; seed++) {
      const [sc] = fc.sample(scenarioArb, { ...PARAMS, seed });
      out(`seed ${seed}\n${describe(sc)}\n  as JSON: ${JSON.stringify(sc)}\n`);
    }
    return 0;
  }
  if (args.scenario) {
    const r = await runSequence(args.scenario, args.verbose ? out : undefined);
    out(formatResult(r));
    out(`${r.ops} operations, ${(r.ms / 1000).toFixed(1)} s; served ${JSON.stringify(r.served)}`);
    return r.violations.length ? 1 : 0;
  }
  const t0 = Date.now();
  const deadline = t0 + args.minutes * 60_000;
  const all: Result[] = [];
  const failed: SeedOutcome[] = [];
  let seeds = 0;
  const log = args.verbose ? out : undefined;
  const onRun = (r: Result) => {
    all.push(r);
    const s = ((Date.now() - t0) / 1000).toFixed(0);
    out(
      `[${s}s] sequence ${all.length}: ${r.ops} operations, ${(r.ms / 1000).toFixed(1)} s, ${r.violations.length ? `FAILED (${r.violations.length})` : 'ok'}`,
    );
  };
  do {
    const seed = args.seed ?? (Math.random() * 2 ** 31) | 0;
    seeds++;
    out(`seed ${seed}${args.path ? ` path ${args.path}` : ''}`);
    const budget = Math.max(0, Math.min(args.shrinkMinutes * 60_000, deadline - Date.now()));
    const r = await checkSeed({
      seed,
      path: args.path,
      budgetMs: args.seed !== undefined ? args.shrinkMinutes * 60_000 : budget,
      log,
      onRun,
    });
    if (r.failed) {
      failed.push(r);
      out(
        `\nFAILURE: seed ${seed}${r.path ? ` path ${r.path}` : ''}${r.interrupted ? ' (shrinking stopped at its time limit)' : ''}`,
      );
      out(`replay: npm run chaos -- --seed ${seed}${r.path ? ` --path ${r.path}` : ''}`);
      if (r.minimal) out(formatResult(r.minimal));
      out('');
    }
  } while (args.seed === undefined && Date.now() < deadline);

  const ops = all.map((r) => r.ops);
  const served = all.reduce((n, r) => n + Object.values(r.served).reduce((a, b) => a + (b ?? 0), 0), 0);
  out('\nchaos: figures');
  out(
    `  time: ${((Date.now() - t0) / 60_000).toFixed(1)} min; seeds: ${seeds}; sequences run (shrinking included): ${all.length}`,
  );
  if (ops.length)
    out(
      `  operations per sequence: mean ${(ops.reduce((a, b) => a + b, 0) / ops.length).toFixed(1)}, min ${Math.min(...ops)}, max ${Math.max(...ops)}`,
    );
  out(
    `  responses served under load: ${served}; failed requests (allowed or not): ${all.reduce((n, r) => n + r.failures.length, 0)}`,
  );
  // The cells of the state x operation table (docs/lifecycle.md) that the masters decided.
  const seen = new Set(all.flatMap((r) => r.cells ?? []));
  const cells = Object.entries(DECIDE).flatMap(([state, ops]) => Object.keys(ops).map((op) => `${state} ${op}`));
  out(`  state x operation cells exercised: ${cells.filter((c) => seen.has(c)).length} of ${cells.length}`);
  const missed = cells.filter((c) => !seen.has(c));
  if (missed.length) out(`    not exercised: ${missed.join(', ')}`);
  out(`  failing seeds: ${failed.length}`);
  for (const f of failed) {
    const v = f.minimal?.violations ?? [];
    out(`    seed ${f.seed}${f.path ? ` path ${f.path}` : ''}: ${[...new Set(v.map((x) => x.invariant))].join('; ')}`);
  }
  return failed.length ? 1 : 0;
}

// Ctrl-C: the clusters run in their own process groups (as a shell starts a service), so the
// terminal's signal does not reach them: kill them before going.
for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.once(sig, () => {
    killSequences();
    process.exit(sig === 'SIGINT' ? 130 : 143);
  });
}

main().then(
  (code) => process.exit(code),
  (e: Error) => {
    process.stderr.write(`chaos: ${e.stack ?? e.message}\n`);
    process.exit(70);
  },
);
