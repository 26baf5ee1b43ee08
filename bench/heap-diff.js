#!/usr/bin/env node
'use strict';
// node bench/heap-diff.js A.heapsnapshot B.heapsnapshot [N]: what grew from heap snapshot A to B
// (those of `npm run soak -- --snapshots DIR`): objects counted and their own sizes summed by kind
// and constructor (or string, code, ...), the N (default 25) that grew most in bytes.
const fs = require('node:fs');

/** {key: {count, bytes}} of one snapshot: key = "<node type> <name>" (the name cut short). */
function tally(file) {
  const snap = JSON.parse(fs.readFileSync(file, 'utf8'));
  const meta = snap.snapshot.meta;
  const fields = meta.node_fields;
  const types = meta.node_types[0];
  const [T, N, S] = ['type', 'name', 'self_size'].map((f) => fields.indexOf(f));
  const step = fields.length;
  const nodes = snap.nodes;
  /** @type {Map<string, {count: number, bytes: number}>} */
  const out = new Map();
  for (let i = 0; i < nodes.length; i += step) {
    const type = types[nodes[i + T]];
    // Strings and code are told apart by kind alone: their names are their contents.
    const name = ['string', 'concatenated string', 'sliced string', 'code', 'number'].includes(type)
      ? ''
      : String(snap.strings[nodes[i + N]]).slice(0, 60);
    const key = `${type} ${name}`.trim();
    const e = out.get(key) ?? { count: 0, bytes: 0 };
    e.count++;
    e.bytes += nodes[i + S];
    out.set(key, e);
  }
  return out;
}

function main() {
  const [a, b, n = '25'] = process.argv.slice(2);
  if (!a || !b) {
    process.stderr.write('usage: node bench/heap-diff.js A.heapsnapshot B.heapsnapshot [N]\n');
    return 64;
  }
  const [ta, tb] = [tally(a), tally(b)];
  const sum = (t) => [...t.values()].reduce((s, e) => s + e.bytes, 0);
  const rows = [];
  for (const key of new Set([...ta.keys(), ...tb.keys()])) {
    const x = ta.get(key) ?? { count: 0, bytes: 0 };
    const y = tb.get(key) ?? { count: 0, bytes: 0 };
    if (x.count !== y.count || x.bytes !== y.bytes)
      rows.push({ key, count: y.count - x.count, bytes: y.bytes - x.bytes, total: y.count });
  }
  rows.sort((p, q) => q.bytes - p.bytes);
  process.stdout.write(
    `heap (self sizes): ${(sum(ta) / 1024).toFixed(0)} KB -> ${(sum(tb) / 1024).toFixed(0)} KB ` +
      `(${((sum(tb) - sum(ta)) / 1024).toFixed(1)} KB)\n\n` +
      '| bytes | objects | objects in B | kind |\n|---|---|---|---|\n' +
      rows
        .slice(0, Number(n))
        .map(
          (r) =>
            `| ${r.bytes > 0 ? '+' : ''}${r.bytes} | ${r.count > 0 ? '+' : ''}${r.count} | ${r.total} | ${r.key} |`,
        )
        .join('\n') +
      '\n',
  );
  return 0;
}

process.exitCode = main();
