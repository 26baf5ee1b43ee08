import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { EXIT_CANTCREAT } from '../shared/exit-codes';
import { prepareDir } from '../shared/pids-dir';
import { StartError } from '../shared/start-error';

const { O_WRONLY, O_RDONLY, O_CREAT, O_EXCL, O_NOFOLLOW } = fs.constants;

/**
 * The `pidFile` option: one file with a fixed name (for systemd's PIDFile=,
 * monit, logrotate) holding the master's pid, beside the per-process files
 * in `pids`. Its directory is checked as the pids directory is (lib/shared/pids-dir.ts:
 * not writable by other users unless this user's own, owned by this user or
 * root), so that nobody else can swap what is in it. Written whole, never
 * through a link: a temporary file with an unpredictable name, created
 * O_CREAT|O_EXCL|O_NOFOLLOW, renamed over the file (a link planted under
 * that name is replaced, its target untouched), so a reader never sees it
 * half-written. A failure stops the start (StartError, exit 73) naming the
 * file. Removed when the process exits, but only while it still holds this
 * pid: a successor's file is left alone.
 */
export function holdPidFile(file: string, pid = process.pid): void {
  prepareDir(path.dirname(file), "the pid file's directory", 0o755);
  try {
    writeWhole(file, `${pid}\n`);
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    throw new StartError(`cluster2: cannot write the pid file ${file}: ${err.code ?? err.message}`, EXIT_CANTCREAT);
  }
  process.on('exit', () => releasePidFile(file, pid));
}

export function releasePidFile(file: string, pid = process.pid): void {
  try {
    // Read without following a link: whatever someone put there is not ours to read through.
    const fd = fs.openSync(file, O_RDONLY | O_NOFOLLOW);
    let content: string;
    try {
      const buf = Buffer.alloc(32);
      content = buf.toString('latin1', 0, fs.readSync(fd, buf, 0, 32, 0));
    } finally {
      fs.closeSync(fd);
    }
    if (content.trim() === String(pid)) fs.unlinkSync(file);
  } catch {
    /* gone already, or not a file of ours */
  }
}

/** Write `text` to a fresh temporary file beside `file` (a random name, created exclusively), then rename it over `file`. */
function writeWhole(file: string, text: string): void {
  const flags = O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW;
  let tmp = '';
  let fd = -1;
  // 96 random bits: a name nobody can plant ahead. EEXIST again and again would be an attack or a bug: give up.
  for (let i = 0; fd < 0; i++) {
    tmp = path.join(path.dirname(file), `.${path.basename(file)}.${randomBytes(12).toString('hex')}.tmp`);
    try {
      fd = fs.openSync(tmp, flags, 0o644);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST' || i >= 4) throw e;
    }
  }
  try {
    try {
      fs.writeSync(fd, text);
    } finally {
      fs.closeSync(fd);
    }
    fs.renameSync(tmp, file);
  } catch (e) {
    try {
      fs.unlinkSync(tmp);
    } catch {
      /* gone */
    }
    throw e;
  }
}
