#!/usr/bin/env node
'use strict';
// Run by `npm pack` and `npm publish` (prepack): refuse to pack a package without the
// linux-x64 prebuild, which most users install (no compiler there: they would get the
// pure-JS fallback without a word). `npm run prebuild` makes it. A source-only package is
// packed only when asked for by name: CLUSTER2_PACK_SOURCE_ONLY=1.
const fs = require('node:fs');
const path = require('node:path');

const ROOT = path.join(__dirname, '..');
const DIR = path.join('prebuilds', 'linux-x64');
const OPT_OUT = 'CLUSTER2_PACK_SOURCE_ONLY';
/** ELF: magic, 64-bit class (2), little-endian (1); e_machine (offset 18) x86-64 is 62. */
const EM_X86_64 = 62;

/** Why the directory holds no linux-x64 addon, or null when it does. */
function problem(dir) {
  let names;
  try {
    names = fs.readdirSync(dir).filter((n) => n.endsWith('.node'));
  } catch {
    return `${DIR}/ does not exist`;
  }
  if (names.length === 0) return `${DIR}/ holds no .node file`;
  for (const name of names) {
    const head = Buffer.alloc(20);
    let n = 0;
    const fd = fs.openSync(path.join(dir, name), 'r');
    try {
      n = fs.readSync(fd, head, 0, head.length, 0);
    } finally {
      fs.closeSync(fd);
    }
    const elf = n === head.length && head.readUInt32BE(0) === 0x7f454c46 && head[4] === 2 && head[5] === 1;
    if (!elf || head.readUInt16LE(18) !== EM_X86_64) return `${DIR}/${name} is not an x86-64 ELF shared object`;
  }
  return null;
}

const why = problem(path.join(ROOT, DIR));
const optOut = process.env[OPT_OUT];
if (why && optOut === '1') {
  process.stderr.write(`cluster2: packing a source-only package (${OPT_OUT}=1): ${why}\n`);
} else if (why) {
  process.stderr.write(
    `cluster2: refusing to pack: ${why}. Run \`npm run prebuild\` first (on Linux x86-64), ` +
      `or set ${OPT_OUT}=1 to pack a package without it (users without a compiler then get the ` +
      `pure-JS fallback)${optOut ? `; ${OPT_OUT} is ${JSON.stringify(optOut)}, only 1 means that` : ''}.\n`,
  );
  process.exit(1);
}
