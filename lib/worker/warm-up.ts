import * as http from 'node:http';
import * as net from 'node:net';

/**
 * Requests on kept-alive connections, then requests each on a connection of
 * its own. Measured (callgrind, the bench app's first 6,000 keep-alive
 * requests as a worker): with none, 1.05 G instructions more than the same
 * requests once warm; after 1,000 + 100, 0.73 G; after 2,000 + 200, 0.57 G;
 * after 4,000 + 400, 0.50 G (the rest: code the app's own server and handler
 * make V8 compile again). 2,000 + 200 take about 0.3-0.5 s of one core.
 */
export const WARM_KEEP_ALIVE = 2000;
export const WARM_NEW_CONNECTIONS = 200;
const CONNECTIONS = 8;
/** It never runs longer than this (a machine short of CPU: what is compiled by then is compiled). */
export const WARM_MAX_MS = 3000;

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
    const sockets = new Set<net.Socket>();
    let running = CONNECTIONS;
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
      // One connection per request: the accept path, a `Connection: close` answer.
      const next = () => {
        if (ended) return;
        if (stop() || fresh-- <= 0) {
          if (--running === 0) end();
          return;
        }
        const s = open();
        s.on('close', next);
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
              return next();
            }
            s.write(++sent % 5 === 4 ? POST : GET);
          }
          // A status line cut in two by the read: its start, kept for the next.
          tail = text.slice(Math.max(after, text.length - STATUS.length + 1));
        });
        s.write(GET);
      };
      for (let c = 0; c < CONNECTIONS; c++) keepAlive();
    });
  });
}
