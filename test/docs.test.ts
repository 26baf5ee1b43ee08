// The documentation cannot rot quietly (CONTRIBUTING.md, "Tests of the documentation"):
// - every code block of README.md and docs/*.md marked to run (```js run, ```sh run) runs
//   for real: in a temporary directory where require('cluster2') is this repository, on free
//   ports; it must answer HTTP, then exit 0 at SIGTERM leaving no process behind;
// - every relative link and heading anchor of README.md, docs/*.md and CONTRIBUTING.md
//   points at something that exists;
// - the options tables of README.md and docs/api.md name every option, and no other.
import t from 'tap';
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import WebSocket from 'ws';
import { alive, tmpdir, until } from './helpers/cluster';
import { request } from './helpers/http';

const { freePorts } = require('./fixtures/monitor-ports.js') as { freePorts: (n: number) => Promise<number[]> };
const { OPTION_NAMES } = require('../dist/shared/options.js') as { OPTION_NAMES: string[] };

const ROOT = path.join(__dirname, '..');
const DOCS = fs
  .readdirSync(path.join(ROOT, 'docs'))
  .filter((f) => f.endsWith('.md'))
  .map((f) => path.join('docs', f));
const RUNNABLE = ['README.md', ...DOCS];
const LINKED = ['README.md', 'CONTRIBUTING.md', ...DOCS];

interface Block {
  file: string;
  line: number;
  lang: string;
  attrs: Record<string, string | true>;
  body: string;
}

/** The fenced code blocks of a markdown file, with their info string parsed: ```js run check=ecv-control */
function blocks(file: string): Block[] {
  const lines = fs.readFileSync(path.join(ROOT, file), 'utf8').split('\n');
  const out: Block[] = [];
  let cur: Block | null = null;
  let body: string[] = [];
  lines.forEach((l, i) => {
    const fence = /^```(.*)$/.exec(l);
    if (cur === null && fence) {
      const [lang = '', ...words] = fence[1].trim().split(/\s+/);
      const attrs: Record<string, string | true> = {};
      for (const w of words) {
        const [k, v] = w.split('=');
        attrs[k] = v ?? true;
      }
      cur = { file, line: i + 1, lang, attrs, body: '' };
      body = [];
    } else if (cur !== null && /^```\s*$/.test(l)) {
      cur.body = body.join('\n') + '\n';
      out.push(cur);
      cur = null;
    } else if (cur !== null) {
      body.push(l);
    }
  });
  return out;
}

/** The lines of a markdown file outside fenced code blocks, with their numbers. */
function prose(file: string): [number, string][] {
  const out: [number, string][] = [];
  let fenced = false;
  fs.readFileSync(path.join(ROOT, file), 'utf8')
    .split('\n')
    .forEach((l, i) => {
      if (/^```/.test(l)) fenced = !fenced;
      else if (!fenced) out.push([i + 1, l]);
    });
  return out;
}

/** The anchors GitHub gives a file's headings: lower case, punctuation dropped, spaces to '-', repeats numbered. */
function anchors(file: string): Set<string> {
  const seen = new Map<string, number>();
  const out = new Set<string>();
  for (const [, l] of prose(file)) {
    const h = /^#{1,6}\s+(.*?)\s*#*\s*$/.exec(l);
    if (!h) continue;
    const text = h[1].replace(/\[([^\]]*)\]\([^)]*\)/g, '$1').replace(/`/g, '');
    const base = text
      .toLowerCase()
      .replace(/[^\p{L}\p{M}\p{N}\p{Pc} -]/gu, '')
      .replace(/ /g, '-');
    const n = seen.get(base) ?? 0;
    seen.set(base, n + 1);
    out.add(n === 0 ? base : `${base}-${n}`);
  }
  return out;
}

t.test('relative links and anchors point at files and headings that exist', async (t) => {
  let checked = 0;
  for (const file of LINKED) {
    for (const [n, raw] of prose(file)) {
      const l = raw.replace(/(`+)[\s\S]*?\1/g, '');
      for (const m of l.matchAll(/\]\(([^)\s]+)(?:\s+"[^"]*")?\)/g)) {
        const target = m[1];
        if (/^[a-z][a-z0-9+.-]*:/i.test(target)) continue;
        checked++;
        const [rel, anchor] = target.split('#');
        const to = rel === '' ? path.join(ROOT, file) : path.resolve(path.dirname(path.join(ROOT, file)), rel);
        const where = `${file}:${n}: ${target}`;
        if (!fs.existsSync(to)) {
          t.fail(`${where}: no such file`);
          continue;
        }
        if (anchor !== undefined) {
          const names = to.endsWith('.md') ? anchors(path.relative(ROOT, to)) : new Set<string>();
          t.ok(names.has(anchor), `${where}: a heading with that anchor`, { found: [...names] });
        }
      }
    }
  }
  t.ok(checked > 50, `the links were found (${checked})`);
});

t.test('docs/README.md lists every guide', async (t) => {
  const index = fs.readFileSync(path.join(ROOT, 'docs', 'README.md'), 'utf8');
  for (const f of DOCS.map((d) => path.basename(d)).filter((f) => f !== 'README.md')) {
    t.match(index, `](${f})`, `docs/README.md links ${f}`);
  }
});

/** The option names of the table under `## Options` (`ecv.monitor` and the like included). */
function optionRows(file: string): string[] {
  const text = fs.readFileSync(path.join(ROOT, file), 'utf8');
  const section = text.split('\n## Options\n')[1];
  if (section === undefined) throw new Error(`${file} has no "## Options"`);
  const lines = section.split('\n');
  const first = lines.findIndex((l) => l.startsWith('| option |'));
  const rows = lines.slice(first + 2);
  return rows
    .slice(
      0,
      rows.findIndex((l) => !l.startsWith('|')),
    )
    .map((l) => /^\| `([^`]+)`/.exec(l)![1]);
}

t.test('the options tables of the README and docs/api.md name every option, and no other', async (t) => {
  const readme = optionRows('README.md');
  const api = optionRows('docs/api.md');
  t.same(readme, api, 'the same rows, in the same order');
  t.same(
    [...new Set(readme.map((o) => o.split('.')[0]))].sort(),
    [...OPTION_NAMES].sort(),
    'every option of lib/shared/options.ts, and no other',
  );
});

// ---- The runnable blocks ------------------------------------------------------------------

const runnable = RUNNABLE.flatMap((file) => {
  const all = blocks(file);
  return all
    .map((b, i) => ({ b, files: all.slice(0, i).filter((f) => typeof f.attrs.file === 'string') }))
    .filter(({ b }) => b.attrs.run === true);
});

/** Every process below `root` now (by the parent pids in /proc). */
function descendants(root: number): number[] {
  const children = new Map<number, number[]>();
  for (const d of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${d}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      children.set(ppid, [...(children.get(ppid) ?? []), Number(d)]);
    } catch {
      /* gone */
    }
  }
  const out: number[] = [];
  const todo = [root];
  while (todo.length) {
    for (const c of children.get(todo.pop()!) ?? []) {
      out.push(c);
      todo.push(c);
    }
  }
  return out;
}

/** What a block's ports become: 3000 and 8080 the app's, 3001 the monitor's. */
function withPorts(body: string, app: number, mon: number): string {
  return body
    .replace(/\b(3000|8080)\b/g, String(app))
    .replace(/\b3001\b/g, String(mon))
    .replace(/new Cluster\(\{/g, (s) => (/\bmonPort\b/.test(body) ? s : `${s} monPort: ${mon},`));
}

t.test('the runnable blocks: at least the README first example and cluster2 start, and two guides', async (t) => {
  const where = runnable.map(({ b }) => `${b.file} ${b.lang}`);
  t.ok(where.includes('README.md js'), 'the README API example');
  t.ok(where.includes('README.md sh'), 'the README cluster2 start example');
  t.ok(runnable.filter(({ b }) => b.file !== 'README.md').length >= 2, 'guide examples');
});

for (const { b, files } of runnable) {
  t.test(`${b.file}:${b.line}: the \`${b.lang} run\` block`, async (t) => {
    const [port, monPort] = await freePorts(2);
    const dir = tmpdir('c2-docs-');
    fs.mkdirSync(path.join(dir, 'node_modules', '.bin'), { recursive: true });
    fs.symlinkSync(ROOT, path.join(dir, 'node_modules', 'cluster2'));
    const bin = path.join(dir, 'node_modules', '.bin', 'cluster2');
    fs.writeFileSync(
      bin,
      `#!/bin/sh\nexec "${process.execPath}" "${path.join(ROOT, 'dist', 'cli', 'main.js')}" "$@"\n`,
      {
        mode: 0o755,
      },
    );
    // The command reads its options from the package.json beside the app: the monitor's port.
    fs.writeFileSync(path.join(dir, 'package.json'), JSON.stringify({ private: true, cluster2: { monPort } }));
    for (const f of files) fs.writeFileSync(path.join(dir, f.attrs.file as string), withPorts(f.body, port, monPort));

    let argv: string[];
    if (b.lang === 'js') {
      fs.writeFileSync(path.join(dir, 'main.js'), withPorts(b.body, port, monPort));
      argv = [process.execPath, 'main.js'];
    } else {
      const lines = withPorts(b.body, port, monPort)
        .split('\n')
        .map((l) => l.replace(/(^|\s+)#.*$/, '').trim())
        .filter(Boolean);
      t.equal(lines.length, 1, 'a sh run block is one command');
      argv = ['sh', '-c', `exec ${lines[0].replace(/^npx /, '')}`];
    }
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      PATH: `${path.join(dir, 'node_modules', '.bin')}:${process.env.PATH}`,
      NODE_PATH: path.join(ROOT, 'node_modules'), // the blocks' other packages (ws)
    };
    delete env.PORT;
    delete env.WEB_CONCURRENCY;
    const child: ChildProcess = spawn(argv[0], argv.slice(1), { cwd: dir, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout!.on('data', (d) => (output += d));
    child.stderr!.on('data', (d) => (output += d));
    const exited = new Promise<number | string | null>((resolve) =>
      child.once('exit', (code, signal) => resolve(code ?? signal)),
    );
    let done = false;
    void exited.then(() => (done = true));

    // Every process it starts, noted while it runs (the spare comes later), killed if left.
    const seen = new Set<number>([child.pid!]);
    const watch = setInterval(() => descendants(child.pid!).forEach((p) => seen.add(p)), 50);
    t.teardown(() => {
      clearInterval(watch);
      for (const pid of seen) if (alive(pid)) process.kill(pid, 'SIGKILL');
      fs.rmSync(dir, { recursive: true, force: true });
    });
    const failed = () => (done ? `it exited: ${output}` : output);

    await until(
      async () => {
        if (done) throw new Error(`the block exited before it served:\n${output}`);
        return (await request(port, '/ecv', { timeout: 1000 }).catch(() => null))?.status === 200;
      },
      15_000,
      'ECV to answer 200 on the app port',
    );
    t.ok((await request(port, '/')).status < 500, 'the app answers', { output: failed() });

    let closed: Promise<number> | undefined;
    if (b.attrs.check === 'websocket') {
      const ws = new WebSocket(`ws://127.0.0.1:${port}/`);
      t.teardown(() => ws.terminate());
      const echo = new Promise<string>((resolve, reject) => {
        ws.once('message', (d) => resolve(String(d)));
        ws.once('error', reject);
      });
      closed = new Promise((resolve) => ws.once('close', (code) => resolve(code)));
      await new Promise((resolve, reject) => ws.once('open', resolve).once('error', reject));
      ws.send('ping');
      t.equal(await echo, 'ping', 'a WebSocket message is echoed');
    }
    if (b.attrs.check === 'ecv-control') {
      t.equal((await request(port, '/ecv/disable', { method: 'POST' })).status, 204, 'POST /ecv/disable: 204');
      t.equal((await request(port, '/ecv')).status, 400, 'ECV DISABLED: 400');
      t.equal((await request(port, '/ecv/enable', { method: 'POST' })).status, 204, 'POST /ecv/enable: 204');
      t.equal((await request(port, '/ecv')).status, 200, 'ECV AVAILABLE again');
    }

    await until(() => seen.size > 1, 5000, 'the workers to be seen');
    child.kill('SIGTERM');
    let timer: NodeJS.Timeout | undefined;
    const code = await Promise.race([
      exited,
      new Promise((r) => (timer = setTimeout(r, 15_000))).then(() => 'still running 15 s after SIGTERM'),
    ]);
    clearTimeout(timer);
    t.equal(code, 0, 'SIGTERM: a graceful shutdown, exit 0', { output });
    if (closed) t.equal(await closed, 1001, 'the WebSocket was closed with 1001 Going Away (the onDrain handler)');
    clearInterval(watch);
    await until(() => [...seen].every((p) => !alive(p)), 5000, 'every process it started to be gone').catch(() => {});
    t.same(
      [...seen].filter((p) => alive(p)),
      [],
      `every process it started is gone (${seen.size} seen)`,
    );
  });
}
