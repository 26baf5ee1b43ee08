import * as fs from 'node:fs';
import * as path from 'node:path';
import { EXIT_CANTCREAT } from './exit-codes';
import { StartError } from './start-error';

/**
 * The pids directory: `master.<pid>.pid` and `worker.<pid>.pid` written, found,
 * removed and swept here, and every check they pass.
 *
 * Nothing in the pids directory is trusted for its name alone: a pid file
 * counts only when it is a regular file owned by this user (or root), its
 * content names the pid of its name, and that process started when the file
 * says (its start time from /proc/<pid>/stat is recorded in the file). Files
 * are created with O_CREAT|O_EXCL|O_NOFOLLOW, so nothing is written through a
 * link. The directory is created 0700; an existing one that other users may
 * write and that is not this user's own is refused, as ssh's StrictModes does.
 */

const { O_WRONLY, O_CREAT, O_EXCL, O_NOFOLLOW, O_RDONLY } = fs.constants;

/** This process's effective uid (-1 where there is none: Windows). */
export function euid(): number {
  return typeof process.geteuid === 'function' ? process.geteuid() : -1;
}

/** A file owned by this user or by root. */
export function ownedByUs(st: fs.Stats): boolean {
  const uid = euid();
  return uid < 0 || st.uid === uid || st.uid === 0;
}

/** The process's start time (clock ticks after boot, field 22 of /proc/<pid>/stat); null without /proc or process. */
export function procStartTime(pid: number): string | null {
  let stat: string;
  try {
    stat = fs.readFileSync(`/proc/${pid}/stat`, 'latin1');
  } catch {
    return null;
  }
  // The command name (field 2) may hold spaces and parentheses: count from the last ')'.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return fields[19] ?? null;
}

/** Is there a /proc to read start times from? */
const haveProc = (() => {
  try {
    return fs.statSync('/proc/self/stat').isFile();
  } catch {
    return false;
  }
})();

/** What a pid file holds: the pid, then (with /proc) the process's start time. */
export function pidFileContent(pid: number): string {
  const start = procStartTime(pid);
  return start === null ? `${pid}\n` : `${pid}\n${start}\n`;
}

function cantCreate(what: string, file: string, e: unknown): StartError {
  const err = e as NodeJS.ErrnoException;
  return new StartError(`cluster2: cannot ${what} ${file}: ${err.code ?? err.message}`, EXIT_CANTCREAT);
}

/**
 * The pids directory, ready to use: created 0700 when missing; refused
 * (StartError, exit 73) when it cannot be created or written, is not a
 * directory, other users may write it and it is not this user's own, or it
 * is owned by another user than this one or root, whatever its mode (its
 * owner may remove or swap the files in it).
 */
export function preparePidsDir(dir: string): void {
  prepareDir(dir, 'the pids directory', 0o700);
}

/** The directory of a pid file or of the pids, checked as preparePidsDir says; `mode`: when it is created. */
export function prepareDir(dir: string, what: string, mode: number): void {
  let st: fs.Stats;
  try {
    st = fs.statSync(dir);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw cantCreate(`use ${what}`, dir, e);
    try {
      fs.mkdirSync(path.dirname(dir), { recursive: true });
      fs.mkdirSync(dir, { mode });
    } catch (e2) {
      if ((e2 as NodeJS.ErrnoException).code !== 'EEXIST') throw cantCreate(`create ${what}`, dir, e2);
    }
    st = fs.statSync(dir);
  }
  if (!st.isDirectory()) throw new StartError(`cluster2: ${what} ${dir} is not a directory`, EXIT_CANTCREAT);
  const uid = euid();
  if (uid >= 0 && st.uid !== uid && (st.mode & 0o022) !== 0) {
    throw new StartError(
      `cluster2: ${what} ${dir} is writable by other users and not owned by this user (uid ${uid}): ` +
        'refused (use a directory of your own, or chmod go-w it)',
      EXIT_CANTCREAT,
    );
  }
  if (uid >= 0 && st.uid !== uid && st.uid !== 0) {
    throw new StartError(
      `cluster2: ${what} ${dir} is owned by uid ${st.uid}, neither this user (uid ${uid}) nor root: ` +
        'refused whatever its mode, as its owner could remove or replace the files in it ' +
        "(use a directory of your own or root's)",
      EXIT_CANTCREAT,
    );
  }
  try {
    fs.accessSync(dir, fs.constants.W_OK | fs.constants.X_OK);
  } catch (e) {
    throw cantCreate(`write in ${what}`, dir, e);
  }
}

/**
 * Create `file` holding `content`, never through a link and never over a file
 * it did not create: an entry already there (a pid file of a dead process with
 * the same pid, or something planted) is removed first, not opened. A failed
 * write (ENOSPC) leaves no file behind. Errors name the file.
 */
export function createExclusive(file: string, content: string, mode = 0o644): void {
  const flags = O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW;
  let fd: number;
  try {
    try {
      fd = fs.openSync(file, flags, mode);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      fs.unlinkSync(file); // unlink removes a link itself, never its target
      fd = fs.openSync(file, flags, mode);
    }
  } catch (e) {
    throw named(file, e);
  }
  try {
    fs.writeSync(fd, content);
  } catch (e) {
    fs.closeSync(fd);
    try {
      fs.unlinkSync(file);
    } catch {
      /* gone */
    }
    throw named(file, e);
  }
  fs.closeSync(fd);
}

/**
 * Run a write of the start (a pid file, a socket): its failure, thrown or rejected, stops the start
 * with exit 73, naming the file.
 */
export function orCantCreate<T>(write: () => T): T {
  const fail = (e: unknown) => {
    throw new StartError((e as Error).message, EXIT_CANTCREAT);
  };
  try {
    const r = write();
    return (r instanceof Promise ? r.catch(fail) : r) as T;
  } catch (e) {
    return fail(e);
  }
}

function named(file: string, e: unknown): NodeJS.ErrnoException {
  const err = e as NodeJS.ErrnoException;
  const out: NodeJS.ErrnoException = new Error(`cluster2: cannot write ${file}: ${err.code ?? err.message}`);
  out.code = err.code;
  return out;
}

/** The reason for a pid file of a process that exited: removed without a warning. */
export const GONE = 'its process is gone';

/** Why a pid file does not count, or null when it does. `stale`: its process is gone (or another took its pid). */
export function distrust(file: string, pid: number): { reason: string; stale: boolean } | null {
  let st: fs.Stats;
  try {
    st = fs.lstatSync(file);
  } catch {
    return { reason: GONE, stale: true };
  }
  if (!st.isFile()) return { reason: 'it is not a regular file', stale: false };
  if (!ownedByUs(st)) return { reason: `it is owned by uid ${st.uid}, neither this user nor root`, stale: false };
  let content: string;
  try {
    const fd = fs.openSync(file, O_RDONLY | O_NOFOLLOW);
    try {
      const buf = Buffer.alloc(64);
      content = buf.toString('latin1', 0, fs.readSync(fd, buf, 0, 64, 0));
    } finally {
      fs.closeSync(fd);
    }
  } catch {
    return { reason: 'it cannot be read', stale: false };
  }
  const [first, recorded] = content.split('\n');
  if (first !== String(pid)) return { reason: 'its content does not match its name', stale: false };
  if (!signalable(pid)) return { reason: GONE, stale: true };
  if (haveProc) {
    const start = procStartTime(pid);
    if (start === null) return { reason: GONE, stale: true };
    if (recorded !== start)
      return { reason: `process ${pid} is not the one that wrote it (its start time differs)`, stale: true };
  }
  return null;
}

/** The process exists (EPERM: it does, and belongs to someone else). */
export function signalable(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** A control socket that is a socket owned by this user or root; otherwise why not. */
export function distrustSocket(file: string): string | null {
  let st: fs.Stats;
  try {
    st = fs.lstatSync(file);
  } catch {
    return null; // none: the caller says so
  }
  if (!st.isSocket()) return 'it is not a socket';
  if (!ownedByUs(st)) return `it is owned by uid ${st.uid}, neither this user nor root`;
  return null;
}

/** Warn once per file per process that it is ignored, and why. */
const warned = new Set<string>();
export function warnIgnored(file: string, reason: string): void {
  const key = `${file}\0${reason}`;
  if (warned.has(key)) return;
  warned.add(key);
  process.emitWarning(`cluster2: ignoring ${file}: ${reason}`, 'Cluster2Warning');
}

// ---- the pid files ------------------------------------------------------------------

export type Role = 'master' | 'worker';

const NAME = /^(master|worker)\.(\d+)\.pid$/;

export function pidFile(dir: string, role: Role, pid: number): string {
  return path.join(dir, `${role}.${pid}.pid`);
}

/**
 * Write `<dir>/<role>.<pid>.pid` holding the pid and its start time, created
 * exclusively (never through a link); the directory must exist (the master
 * prepares it). Throws an error naming the file.
 */
export function writePidFile(dir: string, role: Role, pid = process.pid): string {
  const file = pidFile(dir, role, pid);
  createExclusive(file, pidFileContent(pid));
  return file;
}

export function removePidFile(dir: string, role: Role, pid: number): void {
  try {
    fs.unlinkSync(pidFile(dir, role, pid));
  } catch {
    /* already gone */
  }
}

/**
 * Is this pid a live process? A pid file can outlive its process and the pid be
 * reused, so on Linux the process must also be a node process.
 */
export function isAlive(pid: number): boolean {
  if (!signalable(pid)) return false;
  try {
    return fs.readFileSync(`/proc/${pid}/cmdline`, 'latin1').includes('node');
  } catch {
    return true; // no /proc (not Linux): trust the signal check
  }
}

/**
 * Pids of live processes of a role in the directory, from pid files that
 * pass every check above; any other file is ignored with a warning
 * naming it. Files of dead processes (left by a SIGKILL or a crash) are
 * removed on the way, so they never mislead.
 */
export function findPids(dir: string, role: Role): number[] {
  let names: string[];
  try {
    names = fs.readdirSync(dir);
  } catch {
    return [];
  }
  const live: number[] = [];
  for (const name of names) {
    const m = NAME.exec(name);
    if (!m || m[1] !== role) continue;
    const pid = Number(m[2]);
    if (pid === process.pid) continue;
    const file = path.join(dir, name);
    const why = distrust(file, pid);
    if (why === null) live.push(pid);
    else {
      if (why.stale) removePidFile(dir, role, pid);
      if (why.reason !== GONE) warnIgnored(file, why.reason);
    }
  }
  return live.sort((a, b) => a - b);
}

/**
 * Remove the pid files of processes that are gone (a SIGKILLed master cannot remove its
 * own): the last step of every master's way out, so that none is left to mislead.
 */
export function sweepStale(dir: string): void {
  let names: string[];
  try {
    names = fs.readdirSync(dir);
  } catch {
    return;
  }
  for (const name of names) {
    const m = NAME.exec(name);
    if (!m || Number(m[2]) === process.pid) continue;
    if (distrust(path.join(dir, name), Number(m[2]))?.stale) removePidFile(dir, m[1] as Role, Number(m[2]));
  }
}
