// The README's code blocks, by section: tests run what the README shows.
import * as fs from 'node:fs';
import * as path from 'node:path';

export const README = path.join(__dirname, '..', '..', 'README.md');

/**
 * The fenced code blocks (of a language, when given) under the heading that
 * reads `heading`, up to the next heading of the same or a higher level.
 */
export function readmeBlocks(heading: string, lang?: string): string[] {
  const lines = fs.readFileSync(README, 'utf8').split('\n');
  const start = lines.findIndex((l) => /^#+ /.test(l) && l.replace(/^#+ /, '') === heading);
  if (start === -1) throw new Error(`README has no heading "${heading}"`);
  const level = /^#+/.exec(lines[start])![0].length;
  const blocks: string[] = [];
  let cur: string[] | null = null;
  let keep = false;
  for (const l of lines.slice(start + 1)) {
    if (cur === null) {
      const h = /^(#+) /.exec(l);
      if (h && h[1].length <= level) break;
      const f = /^```(\S*)/.exec(l);
      if (f) {
        cur = [];
        keep = lang === undefined || f[1] === lang;
      }
    } else if (l.startsWith('```')) {
      if (keep) blocks.push(cur.join('\n') + '\n');
      cur = null;
    } else {
      cur.push(l);
    }
  }
  return blocks;
}
