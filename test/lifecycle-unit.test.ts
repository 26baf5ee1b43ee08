// The lifecycle table (lib/master/lifecycle.ts) in-process: every state's transitions and
// decisions, and docs/lifecycle.md's state x operation table said the same way.
import * as fs from 'node:fs';
import * as path from 'node:path';
import t from 'tap';
import { cancelled, decide, DECIDE, NEXT, refusal, type Operation } from '../dist/master/lifecycle.js';
import type { MasterState } from '../dist/shared/protocol.js';

const OPS: Operation[] = ['reload', 'upgrade', 'scale', 'ecv', 'shutdown', 'stop'];
const STATES = Object.keys(NEXT) as MasterState[];

t.test('every state has a decision for every operation, and its transitions lead to known states', async (t) => {
  for (const s of STATES) {
    for (const op of OPS)
      t.ok(['now', 'queue', 'pass', 'end', 'join', 'refuse'].includes(decide(s, op)), `${s} x ${op}`);
    for (const n of NEXT[s]) t.ok(STATES.includes(n), `${s} -> ${n}`);
  }
  t.same(NEXT.stopped, [], 'stopped is the end');
  t.ok(
    STATES.filter((s) => s !== 'stopped' && s !== 'idle').every((s) => NEXT[s].includes('stopped')),
    'a stop is possible from every state once started',
  );
});

t.test('the invariants of the table', async (t) => {
  for (const s of STATES) {
    // Only a master that serves queues or acts; one handing over passes everything on.
    if (decide(s, 'reload') === 'queue') t.ok(['starting', 'reloading', 'upgrading'].includes(s), `${s} queues`);
    if (s === 'handing-over')
      t.ok(
        OPS.every((op) => decide(s, op) === 'pass'),
        'handing-over passes all',
      );
  }
  t.equal(decide('draining', 'stop'), 'end', 'a stop cuts a drain short');
  t.equal(decide('draining', 'shutdown'), 'join', 'a shutdown joins one under way');
  t.match(refusal('draining', 'reload'), /reload refused: the master is shutting down/);
  t.match(refusal('idle', 'reload'), /has not started/);
  t.match(cancelled('upgrade'), /upgrade cancelled: the master is shutting down/);
});

t.test('docs/lifecycle.md says what the code does, cell by cell', async (t) => {
  const md = fs.readFileSync(path.join(__dirname, '..', 'docs', 'lifecycle.md'), 'utf8');
  const start = md.indexOf('| state | reload | upgrade | scale | ecv | shutdown | stop |');
  t.ok(start >= 0, 'the table is there');
  const lines = md.slice(start).split('\n').slice(2);
  const rows = lines.slice(
    0,
    lines.findIndex((l) => !l.startsWith('|')),
  );
  const seen = new Set<string>();
  for (const row of rows) {
    const cells = row
      .split('|')
      .slice(1, -1)
      .map((c) => c.trim());
    const state = cells[0] as MasterState;
    seen.add(state);
    OPS.forEach((op, i) => {
      const said = /^\*\*(\w+)\*\*/.exec(cells[i + 1])?.[1];
      t.equal(said, DECIDE[state][op], `${state} x ${op}`);
    });
  }
  t.same([...seen].sort(), STATES.filter((s) => s !== 'idle').sort(), 'every state but idle has its row');
});
