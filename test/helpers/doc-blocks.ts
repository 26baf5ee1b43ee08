// The code blocks of README.md and docs/*.md, by section: tests run what the docs show.
import * as fs from 'node:fs';
import * as path from 'node:path';

const ROOT = path.join(__dirname, '..', '..');

/** The text of a documentation file, by its path from the repository root ('README.md', 'docs/api.md'). */
export function docText(file: string): string {
  return fs.readFileSync(path.join(ROOT, file), 'utf8');
}

/**
 * The fenced code blocks (of a language, when given) of `file` under the heading that
 * reads `heading`, up to the next heading of the same or a higher level.
 */
export function docBlocks(file: string, heading: string, lang?: string): string[] {
  const lines = docText(file).split('\n');
  const start = lines.findIndex((l) => /^#+ /.test(l) && l.replace(/^#+ /, '') === heading);
  if (start === -1) throw new Error(`${file} has no heading "${heading}"`);
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
