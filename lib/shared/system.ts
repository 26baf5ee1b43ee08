/**
 * What cluster2 does with sockets and processes beyond Node's own API, as one face with two
 * implementations: the addon's (lib/shared/native.ts, native/cluster2.cc) and the pure-JS
 * fallback's (lib/shared/fallback.ts), which has the same methods as no-ops, pure-JS versions
 * or answers that say it cannot. Only those two files know which one runs; everything else
 * asks `sys` (lib/shared/native.ts) and, where a behaviour depends on it, `sys.can`.
 */
export interface System {
  /** Which implementation runs: for status lines and the start note only, never to branch on. */
  readonly implementation: 'native' | 'js';
  /** What this implementation can do. */
  readonly can: {
    /** Master-held listening sockets and their SO_REUSEPORT groups (listen, localPort, close). */
    holdSockets: boolean;
    /** Close-on-exec duplicates (dup); without, a descriptor is used as it is. */
    dup: boolean;
    /** The sticky-session BPF program on a reuseport group. */
    sticky: boolean;
    /** Stop new handshakes and read accept queues (lib/service/quiesce.ts). */
    quiesce: boolean;
    /** Adopt orphaned descendants and reap them (PR_SET_CHILD_SUBREAPER, waitpid). */
    adopt: boolean;
  };
  /** A non-blocking, close-on-exec listening socket held by this process (its fd); undefined: cannot. */
  listen(host: string, port: number, backlog: number, reusePort: boolean): number | undefined;
  /** The local port of a socket (getsockname); undefined: cannot tell. */
  localPort(fd: number): number | undefined;
  /** A close-on-exec duplicate of fd; without `can.dup`, fd itself. */
  dup(fd: number): number;
  close(fd: number): void;
  /** Steer new connections of fd's SO_REUSEPORT group to its first n sockets (a no-op when it cannot). */
  steer(fd: number, n: number): void;
  /** Steer each new connection of fd's group to one of its first n sockets, by client address. */
  sticky(fd: number, n: number): void;
  /** Drop every new SYN on this listening socket; handshakes under way still complete. */
  stopHandshakes(fd: number): void;
  /** A listening TCP socket's accept queue length; -1 for a TCP socket that does not listen; null otherwise or when it cannot tell. */
  acceptQueue(fd: number): number | null;
  /** One sd_notify(3) message to NOTIFY_SOCKET `address` (the fallback: the systemd-notify command). */
  notify(address: string, message: string): void;
  /** Become a child subreaper; false when it cannot. */
  setSubreaper(): boolean;
  /** Non-blocking waitpid(2): null while it runs, how it ended once it did; undefined: cannot. */
  waitPid(pid: number): { code: number | null; signal: number | null } | null | undefined;
  /** null when host:port can be bound exclusively (SO_REUSEADDR, no SO_REUSEPORT), else why not. */
  probe(host: string, port: number): Promise<NodeJS.ErrnoException | null>;
}
