import * as fs from 'node:fs';
import * as path from 'node:path';

export interface LogEntry {
  name: string;
  type: 'file' | 'dir';
  size: number;
  mtime: number;
  /** Every local user may read it (a file) or list it (a directory): /logs serves it. */
  public: boolean;
}

export type Found =
  | { kind: 'file'; handle: fs.promises.FileHandle; size: number; mtime: number; name: string }
  | { kind: 'dir'; entries: LogEntry[]; name: string }
  | { kind: 'error'; status: 403 | 404; message: string };

/** At most this many entries in one listing. */
const MAX_ENTRIES = 2000;
const { O_RDONLY, O_NONBLOCK, O_NOCTTY } = fs.constants;

/** Is a decoded path segment a plain name (no way up, across or out)? */
export function safeSegment(s: string): boolean {
  return (
    s !== '' &&
    s !== '.' &&
    s !== '..' &&
    !s.includes('/') &&
    !s.includes('\\') &&
    !s.includes('\0') &&
    !path.isAbsolute(s)
  );
}

function inside(root: string, p: string): boolean {
  return p === root || p.startsWith(root + path.sep);
}

/** Mode bits every local user needs: read a file; list a directory; pass through a directory. */
const EVERYONE = { read: 0o444, list: 0o555, pass: 0o111 } as const;

const everyone = (mode: number, need: number) => (mode & need) === need;
const octal = (mode: number) => `0${(mode & 0o777).toString(8)}`;

/**
 * The logs directory, and nothing outside it. A request names a file by
 * decoded path segments; `..`, `.`, separators (a decoded %2f), NUL and
 * absolute names are refused before the file system is asked. Symbolic links
 * are followed only when they end inside the directory: the real path of
 * what was opened (read back from /proc/self/fd, so a link swapped between
 * check and open is caught too) must lie under the directory's real path.
 *
 * The monitor is reachable by every local user (loopback), and reads files
 * as the master's user (root, often). So it serves only what every local
 * user could read anyway: a file that owner, group and others may read, a
 * directory they may all list, each reached through directories, from /
 * down, that all of them may pass through (the x bits). Anything else is 403
 * with the reason. The directories on the way are checked before a name in
 * them is looked up, so a 403 or a 404 tells nobody what a closed directory
 * holds. (POSIX ACLs are not read: a file the mode bits open is served.)
 */
export class LogFiles {
  constructor(readonly dir: string) {}

  async find(segments: string[]): Promise<Found> {
    const name = segments.join('/');
    if (!segments.every(safeSegment)) return { kind: 'error', status: 403, message: 'not a plain file name' };
    let root: string;
    try {
      root = await fs.promises.realpath(this.dir);
    } catch {
      return segments.length === 0 ? { kind: 'dir', entries: [], name } : notFound();
    }
    const shown = (p: string) => (inside(root, p) ? `logs${p.slice(root.length)}` : p);
    // From / down to the logs directory, then each step inside it: all of them open to every user.
    const closedOnTheWay = async (dirs: string[]): Promise<Found | null> => {
      const closed = await firstClosed(dirs);
      if (closed === 'gone') return notFound();
      if (closed === null) return null;
      const why = `the directory ${shown(closed.dir)} (mode ${octal(closed.mode)}) does not let every local user through`;
      return notPublic(`logs/${name}`, why);
    };
    const above = await closedOnTheWay(prefixes('/', root));
    if (above) return above;
    let cur = root;
    for (const [i, segment] of segments.entries()) {
      let next: string;
      try {
        next = await fs.promises.realpath(path.join(cur, segment));
      } catch {
        return notFound();
      }
      if (!inside(root, next)) return outside();
      // A link may lead elsewhere inside: every directory between the logs directory and it counts.
      const way = await closedOnTheWay(prefixes(root, path.dirname(next)).slice(1));
      if (way) return way;
      if (i < segments.length - 1) {
        const closed = await closedOnTheWay([next]);
        if (closed) return closed;
      }
      cur = next;
    }
    const real = cur;
    let st: fs.Stats;
    try {
      st = await fs.promises.stat(real);
    } catch {
      return notFound();
    }
    if (st.isDirectory()) {
      if (!everyone(st.mode, EVERYONE.list))
        return notPublic(
          `logs/${name}`,
          `not every local user may list the directory ${shown(real)} (mode ${octal(st.mode)})`,
        );
      return { kind: 'dir', entries: await this.list(real, root), name };
    }
    if (!st.isFile()) return notFound();
    // O_NONBLOCK: a FIFO swapped in meanwhile must not hang the open.
    let handle: fs.promises.FileHandle;
    try {
      handle = await fs.promises.open(real, O_RDONLY | O_NONBLOCK | O_NOCTTY);
    } catch {
      return notFound();
    }
    try {
      const opened = await openedPath(handle);
      if (opened !== null && !inside(root, opened)) throw Object.assign(new Error('outside'), { found: outside() });
      // The mode of what was opened, not of what the name pointed to a moment before.
      const fst = await handle.stat();
      if (!fst.isFile()) throw new Error('not a file');
      if (!everyone(fst.mode, EVERYONE.read)) {
        const why = `not every local user may read it (mode ${octal(fst.mode)})`;
        throw Object.assign(new Error('not public'), { found: notPublic(`logs/${name}`, why) });
      }
      return { kind: 'file', handle, size: fst.size, mtime: fst.mtimeMs, name };
    } catch (e) {
      await handle.close().catch(() => {});
      return (e as { found?: Found }).found ?? notFound();
    }
  }

  /** Files and directories of `dir`, links included only when they end inside `root`; by name. */
  private async list(dir: string, root: string): Promise<LogEntry[]> {
    let names: fs.Dirent[];
    try {
      names = await fs.promises.readdir(dir, { withFileTypes: true });
    } catch {
      return [];
    }
    const out: LogEntry[] = [];
    for (const d of names.slice(0, MAX_ENTRIES)) {
      const p = path.join(dir, d.name);
      try {
        // A link that stays inside is served when its target is, and so is every directory on the way to it.
        let wayOpen = true;
        if (d.isSymbolicLink()) {
          const real = await fs.promises.realpath(p);
          if (!inside(root, real)) continue;
          wayOpen = (await firstClosed(prefixes(root, path.dirname(real)).slice(1))) === null;
        }
        const st = await fs.promises.stat(p);
        if (st.isFile()) {
          const pub = wayOpen && everyone(st.mode, EVERYONE.read);
          out.push({ name: d.name, type: 'file', size: st.size, mtime: st.mtimeMs, public: pub });
        } else if (st.isDirectory()) {
          const pub = wayOpen && everyone(st.mode, EVERYONE.list);
          out.push({ name: d.name, type: 'dir', size: 0, mtime: st.mtimeMs, public: pub });
        }
      } catch {
        // gone meanwhile, or a dangling link
      }
    }
    return out.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }
}

/** The real path of an open file (Linux), or null where /proc is not there. */
async function openedPath(handle: fs.promises.FileHandle): Promise<string | null> {
  try {
    return await fs.promises.readlink(`/proc/self/fd/${handle.fd}`);
  } catch {
    return null;
  }
}

/** The first of `dirs` that not every local user may pass through (its x bits); 'gone' when one is not there. */
async function firstClosed(dirs: string[]): Promise<{ dir: string; mode: number } | 'gone' | null> {
  for (const dir of dirs) {
    const st = await fs.promises.stat(dir).catch(() => null);
    if (st === null) return 'gone';
    if (!everyone(st.mode, EVERYONE.pass)) return { dir, mode: st.mode };
  }
  return null;
}

/** '/', '/a', '/a/b' for from '/' to '/a/b'; from a directory to one inside it, both included. */
function prefixes(from: string, to: string): string[] {
  const out = [from];
  if (to === from) return out;
  const rest = path.relative(from, to).split(path.sep);
  for (const part of rest) out.push(path.join(out[out.length - 1], part));
  return out;
}

function notPublic(what: string, why: string): Found {
  return {
    kind: 'error',
    status: 403,
    message: `${what} is not served: ${why}; /logs serves only what every local user could read anyway`,
  };
}

function notFound(): Found {
  return { kind: 'error', status: 404, message: 'no such log file' };
}

function outside(): Found {
  return { kind: 'error', status: 403, message: 'outside the logs directory' };
}
