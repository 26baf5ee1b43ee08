// Is host:port free for us? And if not, who holds it?
//
// "Free" means bindable exclusively: with SO_REUSEADDR (a port in TIME_WAIT is free) and
// without SO_REUSEPORT (a port held by another program's SO_REUSEPORT socket is busy, since
// a SO_REUSEPORT bind of ours would silently share its traffic): native.ts probe(), through
// the addon or its fallback.
// The holder is found through /proc (Linux): LISTEN entries of /proc/net/tcp{,6} for the
// port -> socket inodes -> the process whose /proc/<pid>/fd links to `socket:[inode]`.

import * as dns from 'node:dns';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import { probe } from '../shared/native';
import { EXIT_NOHOST } from '../shared/exit-codes';
import { StartError } from '../shared/start-error';
import { bindFailure, type PortHolder } from '../shared/bind-errors';

export type { PortHolder };

/** undefined or '' -> '' (all interfaces); an IP literal passes; a name -> its address (dns.lookup, as net does). */
export async function resolveHost(host: string | undefined): Promise<string> {
  if (host === undefined || host === '') return '';
  if (net.isIP(host)) return host;
  const { address } = await dns.promises.lookup(host);
  return address;
}

/**
 * resolveHost for an address to bind (`what`: the app's `host`, the monitor's `monHost`): a name
 * that does not resolve stops the start (exit 68, EX_NOHOST).
 */
export async function resolveBindHost(host: string | undefined, what = 'host'): Promise<string> {
  try {
    return await resolveHost(host);
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    const name = what === 'host' ? 'host' : `${what} host`;
    throw new StartError(
      `cluster2: ${name} ${JSON.stringify(host)} does not resolve (${err.code ?? err.message})`,
      EXIT_NOHOST,
    );
  }
}

/**
 * null when host:port can be bound exclusively; otherwise why not (and who holds it).
 * Never throws for an unbindable port (EADDRINUSE, EACCES, EADDRNOTAVAIL, an unknown host...):
 * all of these make a start fail the same way.
 */
export async function probePort(host: string | undefined, port: number): Promise<PortHolder | null> {
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new RangeError(`port must be an integer between 0 and 65535, got ${String(port)}`);
  }
  let address: string;
  try {
    address = await resolveHost(host);
  } catch (err) {
    return { host: host ?? '', port, code: (err as NodeJS.ErrnoException).code ?? 'ENOTFOUND' };
  }
  // Port 0 is always free, but the address may still not be this machine's: a bind says so.
  if (port === 0 && address === '') return null;
  const error = await probe(address, port);
  if (!error) return null;
  const holder: PortHolder = { host: address, port, code: error.code ?? 'EINVAL' };
  if (holder.code === 'EADDRINUSE') {
    const found = findHolder(port, address);
    if (found) {
      holder.pid = found.pid;
      holder.command = found.command;
    }
  }
  return holder;
}

// ---- /proc ----------------------------------------------------------------------------

interface Listener {
  address: Buffer; // 4 or 16 bytes, network order
  inode: string;
}

const LE = os.endianness() === 'LE';

/** /proc/net/tcp prints each 32-bit word of the address in host byte order. */
function parseProcAddress(hex: string): Buffer {
  const b = Buffer.from(hex, 'hex');
  if (LE) for (let i = 0; i + 4 <= b.length; i += 4) b.subarray(i, i + 4).reverse();
  return b;
}

/** The rows of /proc/net/tcp and /proc/net/tcp6, split into fields (none where /proc is not there). */
export function procNetTcp(): string[][] {
  const rows: string[][] = [];
  for (const file of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let text: string;
    try {
      text = fs.readFileSync(file, 'latin1');
    } catch {
      continue;
    }
    for (const line of text.split('\n').slice(1)) rows.push(line.trim().split(/\s+/));
  }
  return rows;
}

function listeners(port: number): Listener[] {
  const out: Listener[] = [];
  for (const f of procNetTcp()) {
    if (f.length < 10 || f[3] !== '0A') continue; // 0A = TCP_LISTEN
    const [addrHex, portHex] = f[1].split(':');
    if (parseInt(portHex, 16) !== port) continue;
    const inode = f[9];
    if (inode === '0') continue;
    out.push({ address: parseProcAddress(addrHex), inode });
  }
  return out;
}

function toBytes(host: string): Buffer | null {
  if (net.isIPv4(host)) return Buffer.from(host.split('.').map(Number));
  if (!net.isIPv6(host)) return null;
  // Expand '::' and an embedded IPv4 tail into 16 bytes.
  let text = host.split('%')[0];
  const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (v4) {
    const b = v4[1].split('.').map(Number);
    text = text.slice(0, -v4[1].length) + `${((b[0] << 8) | b[1]).toString(16)}:${((b[2] << 8) | b[3]).toString(16)}`;
  }
  const [head, tail] = text.includes('::') ? text.split('::') : [text, undefined];
  const h = head ? head.split(':') : [];
  const t = tail ? tail.split(':') : [];
  const groups = tail === undefined ? h : [...h, ...Array<string>(8 - h.length - t.length).fill('0'), ...t];
  const out = Buffer.alloc(16);
  groups.forEach((g, i) => out.writeUInt16BE(parseInt(g, 16) || 0, i * 2));
  return out;
}

/** IPv4-mapped IPv6 (::ffff:a.b.c.d) -> 4 bytes; anything else unchanged. */
function unmap(b: Buffer): Buffer {
  if (b.length === 16 && b.subarray(0, 10).every((x) => x === 0) && b[10] === 0xff && b[11] === 0xff) {
    return b.subarray(12);
  }
  return b;
}

/** Would a listener on `addr` be in the way of a bind on `host`? */
function overlaps(addr: Buffer, host: Buffer | null): boolean {
  if (!host) return true;
  const a = unmap(addr);
  const h = unmap(host);
  if (a.every((x) => x === 0) || h.every((x) => x === 0)) return true;
  return a.equals(h);
}

function commandOf(pid: number): string {
  try {
    const args = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean);
    if (args.length) return args.join(' ');
  } catch {
    // gone, or not ours to read
  }
  try {
    return fs.readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
  } catch {
    return '';
  }
}

/**
 * The process holding a TCP listener on `port` (Linux /proc; undefined elsewhere or when
 * nothing readable holds it). With `host`, listeners whose address overlaps it come first.
 * When several processes share the socket (a cluster), the lowest pid (usually its master) wins.
 */
export function findHolder(port: number, host?: string): { pid: number; command: string } | undefined {
  const found = listeners(port);
  if (found.length === 0) return undefined;
  const hostBytes = host ? toBytes(host) : null;
  // rank 0: overlaps the host asked about; rank 1: any other listener on the port.
  const rank = new Map<string, number>();
  for (const l of found) {
    const r = overlaps(l.address, hostBytes) ? 0 : 1;
    rank.set(`socket:[${l.inode}]`, Math.min(r, rank.get(`socket:[${l.inode}]`) ?? 1));
  }
  let pids: number[];
  try {
    pids = fs
      .readdirSync('/proc')
      .filter((d) => /^\d+$/.test(d))
      .map(Number)
      .sort((a, b) => a - b);
  } catch {
    return undefined;
  }
  let best: { pid: number; rank: number } | undefined;
  for (const pid of pids) {
    let fds: string[];
    try {
      fds = fs.readdirSync(`/proc/${pid}/fd`);
    } catch {
      continue;
    }
    for (const fd of fds) {
      let link: string;
      try {
        link = fs.readlinkSync(`/proc/${pid}/fd/${fd}`);
      } catch {
        continue;
      }
      const r = rank.get(link);
      if (r === undefined) continue;
      if (!best || r < best.rank) best = { pid, rank: r };
      if (r === 0) break;
    }
    if (best && best.rank === 0) break;
  }
  return best ? { pid: best.pid, command: commandOf(best.pid) } : undefined;
}

/**
 * Every app and monitor port free? Otherwise a StartError naming the holder, with portBusyExitCode.
 * `adopted`: a port whose socket this process inherited (an upgrade, systemd) is not probed.
 */
export async function assertPortsFree(
  o: { port: number; monPort: number | false; monHost: string; portBusyExitCode: number },
  host: string,
  adopted: { app?: boolean; mon?: boolean } = {},
): Promise<void> {
  const checks: [string, number][] = adopted.app ? [] : [[host, o.port]];
  if (o.monPort !== false && !adopted.mon) checks.push([await resolveBindHost(o.monHost, 'monitor'), o.monPort]);
  for (const [h, port] of checks) {
    const holder = await probePort(h, port);
    if (holder) throw bindFailure(holder, o.portBusyExitCode);
  }
}
