import * as http from 'node:http';
import * as net from 'node:net';
import { EcvState, createEcvFront } from '../shared/ecv';
import { Instrumented } from './instrument';

/**
 * Requests on kept-alive connections, and requests each on a connection of
 * its own. Measured with callgrind, a spare handed the slot of a worker of
 * the bench app, its first 6,000 keep-alive requests: 1.07 G instructions
 * more than the same requests cost once warm without the warm-up, 0.52 G
 * after it (V8 still compiles again what the app's own server and handler
 * change: hidden classes, call targets). With --trace-opt: 74 functions
 * compiled by TurboFan under the first 3,000 requests without it, 34 after
 * it. A bare server warmed with 1,000 + 100 requests saved less than with
 * 2,000 + 200, and 4,000 + 400 little more. It takes about 2 s and 0.5-0.8 s
 * of CPU, most of it the compiling the worker would otherwise do under load.
 */
export const WARM_KEEP_ALIVE = 2000;
export const WARM_NEW_CONNECTIONS = 200;
/**
 * Kept-alive connections and loops of new connections, all from the start:
 * traffic of one kind after the other made V8 throw away, at the switch,
 * much of what it had compiled for the first, too late to compile it again.
 */
const KEPT_ALIVE = 6;
const NEW_CONNECTION_LOOPS = 2;
/**
 * Each loop waits this long between its requests: TurboFan compiles on a
 * thread of its own, a few ms to tens of ms a function, a few at a time, and
 * starts a function marked hot only at its next call. Unpaced, the requests
 * were over long before most of the hot code was compiled, and it was
 * compiled under the first real load instead. Paced, the compiler keeps up.
 */
const PACE_MS = 5;
/** It never runs longer than this (a machine short of CPU: what is compiled by then is compiled). */
export const WARM_MAX_MS = 5000;

const HEAD = 'Host: localhost\r\nUser-Agent: cluster2-warm-up\r\nAccept: */*\r\n';
const GET = Buffer.from(`GET /warm-up HTTP/1.1\r\n${HEAD}Connection: keep-alive\r\n\r\n`);
const POST = Buffer.from(`POST /warm-up HTTP/1.1\r\n${HEAD}Content-Type: text/plain\r\nContent-Length: 2\r\n\r\nok`);
const CLOSE = Buffer.from(`GET /warm-up HTTP/1.1\r\n${HEAD}Connection: close\r\n\r\n`);
const STATUS = 'HTTP/1.1 ';

/** The ways apps answer, in turn: end(body), setHeader then end, writeHead, chunks, and a request body read first. */
function answer(n: number, req: http.IncomingMessage, res: http.ServerResponse): void {
  switch (n % 5) {
    case 0:
      res.end('ok');
      break;
    case 1:
      res.setHeader('Content-Type', 'text/plain');
      res.end('ok');
      break;
    case 2:
      res.writeHead(200, { 'Content-Type': 'text/plain', 'Content-Length': '2' });
      res.end('ok');
      break;
    case 3:
      res.write('o');
      res.end('k');
      break;
    default:
      req.on('data', () => {});
      req.on('end', () => res.end('ok'));
  }
}

/**
 * A spare's JIT warm-up: Node's HTTP server code (parser callbacks, streams,
 * sockets, timers, responses) run on loopback traffic of the spare's own
 * until TurboFan has compiled it, so the worker the spare becomes serves its
 * first requests with optimized code instead of compiling under load. A new
 * worker's first few thousand requests otherwise cost several times the
 * CPU of the later ones (TurboFan compiling, inline caches filling): after
 * a reload or a recycle, that compiling is what keeps the throughput down.
 * No app code runs: the server here is cluster2's, on 127.0.0.1, a port the
 * system picks, closed at the end. `stop()` is asked before each request: a
 * takeover ends the warm-up at once; it ends anyway after `maxMs`. Resolves
 * with the number of requests answered; never rejects.
 */
export function warmUp(stop: () => boolean, maxMs = WARM_MAX_MS): Promise<number> {
  return new Promise((resolve) => {
    let served = 0;
    const server = http.createServer((req, res) => answer(served++, req, res));
    // Put in front of it what a worker puts in front of the app's server: its sockets and
    // requests then have the hidden classes the worker's will (a socket without the open
    // list's index, or a request without cluster2's listener in front, was another shape
    // to V8, and the warmed code was thrown away at the first real request).
    const inst = new Instrumented(server, {
      timeout: 0,
      connThreshold: 0,
      maxRequests: 0,
      warn: () => {},
      recycle: () => {},
    });
    inst.front = createEcvFront({ path: '/ecv', control: false, allow: [] }, new EcvState(), () => {});
    const sockets = new Set<net.Socket>();
    let running = KEPT_ALIVE + NEW_CONNECTION_LOOPS;
    let ended = false;
    const end = () => {
      if (ended) return;
      ended = true;
      clearTimeout(timer);
      server.close();
      for (const s of sockets) s.destroy();
      resolve(served);
    };
    const timer = setTimeout(end, maxMs);
    timer.unref();
    server.on('error', end);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      const open = () => {
        const s = net.connect(port, '127.0.0.1');
        sockets.add(s);
        s.on('error', () => {});
        s.on('close', () => sockets.delete(s));
        return s;
      };
      let keptAlive = WARM_KEEP_ALIVE;
      let fresh = WARM_NEW_CONNECTIONS;
      const done = () => {
        if (--running === 0) end();
      };
      const later = (fn: () => void) => setTimeout(fn, PACE_MS).unref();
      // One connection per request: the accept path, a `Connection: close` answer.
      const next = () => {
        if (ended) return;
        if (stop() || fresh-- <= 0) return done();
        const s = open();
        s.on('close', () => later(next));
        s.resume();
        s.end(CLOSE);
      };
      // Requests one after the other on a kept-alive connection (an answer's status line: the next).
      const keepAlive = () => {
        const s = open();
        let tail = '';
        let sent = 0;
        s.on('data', (d: Buffer) => {
          const text = tail + d.toString('latin1');
          let after = 0;
          for (let i = text.indexOf(STATUS); i !== -1; i = text.indexOf(STATUS, after)) {
            after = i + STATUS.length;
            if (stop() || keptAlive-- <= 0) {
              s.destroy();
              return done();
            }
            const request = ++sent % 5 === 4 ? POST : GET;
            later(() => {
              if (!ended) s.write(request);
            });
          }
          // A status line cut in two by the read: its start, kept for the next.
          tail = text.slice(Math.max(after, text.length - STATUS.length + 1));
        });
        s.write(GET);
      };
      for (let c = 0; c < KEPT_ALIVE; c++) keepAlive();
      for (let c = 0; c < NEW_CONNECTION_LOOPS; c++) next();
    });
  });
}
