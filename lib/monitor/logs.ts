import * as fs from 'node:fs';
import * as path from 'node:path';

export interface LogEntry {
  name: string;
  type: 'file' | 'dir';
  size: number;
  mtime: number;
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

/**
 * The logs directory, and nothing outside it. A request names a file by
 * decoded path segments; `..`, `.`, separators (a decoded %2f), NUL and
 * absolute names are refused before the file system is asked. Symbolic links
 * are followed only when they end inside the directory: the real path of
 * what was opened (read back from /proc/self/fd, so a link swapped between
 * check and open is caught too) must lie under the directory's real path.
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
    const target = path.join(root, ...segments);
    let real: string;
    try {
      real = await fs.promises.realpath(target);
    } catch {
      return notFound();
    }
    if (!inside(root, real)) return outside();
    let st: fs.Stats;
    try {
      st = await fs.promises.stat(real);
    } catch {
      return notFound();
    }
    if (st.isDirectory()) return { kind: 'dir', entries: await this.list(real, root), name };
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
      if (opened !== null && !inside(root, opened)) throw Object.assign(new Error('outside'), { status: 403 });
      const fst = await handle.stat();
      if (!fst.isFile()) throw new Error('not a file');
      return { kind: 'file', handle, size: fst.size, mtime: fst.mtimeMs, name };
    } catch (e) {
      await handle.close().catch(() => {});
      return (e as { status?: number }).status === 403 ? outside() : notFound();
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
        if (d.isSymbolicLink() && !inside(root, await fs.promises.realpath(p))) continue;
        const st = await fs.promises.stat(p);
        if (st.isFile()) out.push({ name: d.name, type: 'file', size: st.size, mtime: st.mtimeMs });
        else if (st.isDirectory()) out.push({ name: d.name, type: 'dir', size: 0, mtime: st.mtimeMs });
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

function notFound(): Found {
  return { kind: 'error', status: 404, message: 'no such log file' };
}

function outside(): Found {
  return { kind: 'error', status: 403, message: 'outside the logs directory' };
}
