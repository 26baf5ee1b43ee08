import * as fs from 'node:fs';
import * as path from 'node:path';

/**
 * The `pidFile` option: one file with a fixed name (for systemd's PIDFile=,
 * monit, logrotate) holding the master's pid, beside the per-process files
 * in `pids`. Written whole (a temporary file renamed over it), so a reader
 * never sees it half-written; a master that takes over (an upgrade) writes
 * its own pid the same way. Removed when the process exits, but only while
 * it still holds this pid: a successor's file is left alone.
 */
export function holdPidFile(file: string, pid = process.pid): void {
  writeWhole(file, `${pid}\n`);
  process.on('exit', () => releasePidFile(file, pid));
}

export function releasePidFile(file: string, pid = process.pid): void {
  try {
    if (fs.readFileSync(file, 'utf8').trim() === String(pid)) fs.unlinkSync(file);
  } catch {
    /* gone already */
  }
}

function writeWhole(file: string, text: string): void {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const tmp = `${file}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, text);
  fs.renameSync(tmp, file);
}
