// Fakes for unit tests of the supervisor, the recycler and the spare keeper:
// a FakeChild stands for a worker process (no process is started, no signal
// sent) and a FakeListener for a listen strategy whose fork() and forkSpare()
// return FakeChilds and record what was forked. The test scripts what each
// fake says (listening, ready, pong, boot-error, exit).
import { EventEmitter, once } from 'node:events';
import * as fs from 'node:fs';
import type { ChildProcess } from 'node:child_process';
import type { ActiveStrategy, Listener } from '../../dist/listen/strategy.js';
import type { FromWorker, RecycleReason, WorkerStats } from '../../dist/shared/ipc.js';

/**
 * The kernel's PID_MAX_LIMIT (2^22 on 64-bit Linux): pid_max can be set no
 * higher, so the fakes' pids above it belong to no process, and the master's
 * endGroup(pid) (process.kill(-pid)) hits nothing.
 */
const PID_MAX_LIMIT = 2 ** 22;
let nextPid = PID_MAX_LIMIT + 1000;

function pidMax(): number {
  try {
    return Number(fs.readFileSync('/proc/sys/kernel/pid_max', 'latin1').trim());
  } catch {
    return PID_MAX_LIMIT;
  }
}
if (!(nextPid > pidMax())) throw new Error(`fake-child: fake pids from ${nextPid} could be real (pid_max ${pidMax()})`);

const NO_STATS: WorkerStats = { connections: 0, open: 0, requests: 0, rss: 0, heapUsed: 0 };

/** A message the master sent to a fake, with its `c2` tag. */
export interface Sent {
  c2: string;
  [k: string]: unknown;
}

/**
 * A worker process as the master sees it: pid, connected, send(), kill(),
 * and 'message', 'exit' and 'disconnect' events. kill() makes it exit
 * asynchronously, as a process would: with (null, signal), or with the code
 * in `codeOnSignal` (a worker that drains on SIGTERM and exits 0); a `hung()`
 * fake ignores every signal but SIGKILL.
 */
export class FakeChild extends EventEmitter {
  /** Undefined (typed as a number, for the tests' sake) only in an unspawned() fake. */
  readonly pid: number = nextPid++;
  connected = true;
  killed = false;
  exited = false;
  exitCode: number | null = null;
  signalCode: NodeJS.Signals | null = null;
  /** What the master sent it, in order. */
  readonly sent: Sent[] = [];
  /** The signals the master sent it, in order. */
  readonly signals: NodeJS.Signals[] = [];
  /** A signal other than SIGKILL makes it exit with this code instead of (null, signal). */
  codeOnSignal: number | undefined;
  /** A drain message makes it exit with this code (asynchronously); undefined: it stays until scripted. */
  exitOnDrain: number | undefined;
  /** It answers each ping with a pong carrying `stats` (a hung worker does not). */
  answerPings = true;
  stats: WorkerStats = { ...NO_STATS };
  private ignoreSignals = false;
  /** A live child process keeps the parent's event loop alive (its IPC channel), so does a fake. */
  private readonly alive = setInterval(() => {}, 2 ** 30);

  /** Master -> fake. The callback runs asynchronously, with an error once the channel is closed. */
  send(message: unknown, cb?: (err: Error | null) => void): boolean {
    const ok = this.connected;
    if (ok) {
      const m = message as Sent;
      this.sent.push(m);
      this.emit('sent', m);
      if (m.c2 === 'drain' && this.exitOnDrain !== undefined) setImmediate(() => this.exit(this.exitOnDrain!));
      if (m.c2 === 'ping' && this.answerPings) {
        const seq = m.seq as number;
        setImmediate(() => this.say({ c2: 'pong', seq, stats: this.stats }));
      }
    }
    setImmediate(() => cb?.(ok ? null : new Error('fake-child: channel closed')));
    return ok;
  }

  kill(signal: NodeJS.Signals = 'SIGTERM'): boolean {
    if (this.exited) return false;
    this.killed = true;
    this.signals.push(signal);
    if (signal === 'SIGKILL') setImmediate(() => this.exit(null, 'SIGKILL'));
    else if (!this.ignoreSignals) {
      setImmediate(() => (this.codeOnSignal === undefined ? this.exit(null, signal) : this.exit(this.codeOnSignal)));
    }
    return true;
  }

  /**
   * A spawn that failed (EAGAIN, ENOMEM): no pid, not connected, and an
   * 'error' event (asynchronously, as child_process emits it) and no 'exit'.
   */
  static unspawned(message: string): FakeChild {
    const c = new FakeChild();
    Object.defineProperty(c, 'pid', { value: undefined });
    c.connected = false;
    c.exited = true;
    clearInterval(c.alive);
    setImmediate(() => c.emit('error', Object.assign(new Error(message), { code: 'EAGAIN' })));
    return c;
  }

  /** It stops answering: no pong, and no signal but SIGKILL ends it. */
  hung(): this {
    this.answerPings = false;
    this.ignoreSignals = true;
    return this;
  }

  /** Fake -> master: any message of the protocol. */
  say(m: FromWorker | 'ready'): void {
    if (!this.exited) this.emit('message', m);
  }

  listening(address: Extract<FromWorker, { c2: 'listening' }>['address'] = '127.0.0.1:4321'): void {
    this.say({ c2: 'listening', address });
  }

  ready(): void {
    this.say({ c2: 'ready' });
  }

  /** A pong out of turn (seq 0) with these figures; they stay its figures for later pongs. */
  pong(stats: Partial<WorkerStats> = {}): void {
    this.stats = { ...this.stats, ...stats };
    this.say({ c2: 'pong', seq: 0, stats: this.stats });
  }

  bootError(message: string): void {
    this.say({ c2: 'boot-error', message });
  }

  recycle(reason: RecycleReason): void {
    this.say({ c2: 'recycle', reason });
  }

  /** A spare says it has booted. */
  booted(): void {
    this.say({ c2: 'spare' });
  }

  /** It exits now (synchronously: the test decides when), once. */
  exit(code: number | null, signal: NodeJS.Signals | null = null): void {
    if (this.exited) return;
    this.exited = true;
    clearInterval(this.alive);
    this.connected = false;
    this.exitCode = code;
    this.signalCode = signal;
    this.emit('disconnect');
    this.emit('exit', code, signal);
  }

  /**
   * It exits with its channel not read to its end (a real child's 'exit' may come before its last
   * messages): 'exit' now, still connected; it may still say something; closeChannel() ends it.
   */
  exitUnread(code: number | null, signal: NodeJS.Signals | null = null): void {
    if (this.exited) return;
    this.exitCode = code;
    this.signalCode = signal;
    this.emit('exit', code, signal);
  }

  /** After exitUnread(): its channel is read to its end ('disconnect', then 'close'). */
  closeChannel(): void {
    if (this.exited) return;
    this.exited = true;
    clearInterval(this.alive);
    this.connected = false;
    this.emit('disconnect');
    this.emit('close', this.exitCode, this.signalCode);
  }

  /** Resolves when it has exited. */
  async gone(): Promise<void> {
    if (!this.exited) await once(this, 'exit');
  }

  /** The first message with this tag the master sent it, waiting for it. */
  async received(c2: string): Promise<Sent> {
    for (;;) {
      const m = this.sent.find((x) => x.c2 === c2);
      if (m) return m;
      await once(this, 'sent');
    }
  }

  /** As the master holds it. */
  get proc(): ChildProcess {
    return this as unknown as ChildProcess;
  }
}

/** A strategy that forks FakeChilds. Events: fork(child, slot), spare(child). */
export class FakeListener extends EventEmitter implements Listener {
  readonly name: ActiveStrategy;
  readonly port = 4321;
  /** Every fork(), in order. */
  readonly forks: { slot: number; env: NodeJS.ProcessEnv; child: FakeChild }[] = [];
  /** Every forkSpare(), in order. */
  readonly spareForks: { env: NodeJS.ProcessEnv; child: FakeChild }[] = [];
  /** The slots spares were handed to (takeover), in order. */
  readonly takeovers: number[] = [];
  /** Every resize(n), in order. */
  readonly sizes: number[] = [];
  closed = false;
  /** The slots a spare can take (0..spareSlots-1): the node:cluster strategies' spares take any. */
  spareSlots = Infinity;
  /** What resize() returns: how long the worker of a removed slot keeps accepting. */
  acceptFor = 0;
  /** Called with every new fake (worker or spare) before it is returned: to script it ahead. */
  onChild: ((child: FakeChild) => void) | undefined;
  /** The next this many forks (workers or spares) fail to spawn, with this message. */
  failSpawns = 0;
  spawnError = 'spawn EAGAIN';

  private child(): FakeChild {
    if (this.failSpawns > 0) {
      this.failSpawns--;
      return FakeChild.unspawned(this.spawnError);
    }
    const child = new FakeChild();
    this.onChild?.(child);
    return child;
  }

  constructor(name: ActiveStrategy = 'reuseport') {
    super();
    this.name = name;
  }

  fork(slot: number, env: NodeJS.ProcessEnv): ChildProcess {
    const child = this.child();
    this.forks.push({ slot, env, child });
    this.emit('fork', child, slot);
    return child.proc;
  }

  forkSpare(env: NodeJS.ProcessEnv): { proc: ChildProcess; slots: number } {
    const child = this.child();
    this.spareForks.push({ env, child });
    this.emit('spare', child);
    return { proc: child.proc, slots: this.spareSlots };
  }

  takeover(slot: number): { env: Record<string, string>; keepFd?: number } {
    this.takeovers.push(slot);
    return { env: { CLUSTER2_FD: String(3 + slot) } };
  }

  resize(n: number): number {
    this.sizes.push(n);
    return this.acceptFor;
  }

  close(): void {
    this.closed = true;
  }

  /** The n-th fork() (1-based, counting every fork so far), waiting for it. */
  async nthFork(n: number): Promise<FakeChild> {
    while (this.forks.length < n) await once(this, 'fork');
    return this.forks[n - 1].child;
  }

  /** The n-th forkSpare() (1-based), waiting for it. */
  async nthSpare(n: number): Promise<FakeChild> {
    while (this.spareForks.length < n) await once(this, 'spare');
    return this.spareForks[n - 1].child;
  }

  /** Every fake (workers and spares) that has not exited. */
  live(): FakeChild[] {
    return [...this.forks, ...this.spareForks].map((f) => f.child).filter((c) => !c.exited);
  }
}
