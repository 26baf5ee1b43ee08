'use strict';
// The cluster2 app of the soak (bench/soak.js). Options come as JSON in BENCH_OPTS.
// Master: prints cluster events as JSON lines {ev, args, t} on stdout, and obeys
// commands read on stdin, each answered with a line of the same name:
//   reload          -> c.reload(), then {"ev":"reloaded"} or {"ev":"reload-failed"}
//   sample          -> {"ev":"sample","args":[{heapUsed, heapTotal, external, rss, rssAnon, rssFile, fds, ...}]}:
//                      the master's memory after a full GC (run with --expose-gc), its open fds,
//                      and counts from its status
//   fds             -> {"ev":"fds","args":[["socket", "pipe", "/dev/null", ...]]}: what each fd is
//   snapshot FILE   -> a heap snapshot of the master (after a GC) written to FILE, then {"ev":"snapshot"}
// Worker: the bench's handler ("hello <pid>").
const fs = require('node:fs');
const http = require('node:http');
const readline = require('node:readline');
const v8 = require('node:v8');
const Cluster = require('../..');
const { handler } = require('./handler');
const { now } = require('./clock');

const c = new Cluster(JSON.parse(process.env.BENCH_OPTS || '{}'));

function print(ev, args) {
  process.stdout.write(`${JSON.stringify({ ev, args, t: now() })}\n`);
}

/** A full collection, when the master runs with --expose-gc (twice: what the first frees may free more). */
function collect() {
  if (typeof global.gc === 'function') {
    global.gc();
    global.gc();
  }
}

/** The targets of the master's open fds, sockets and pipes without their inode numbers. */
function fds() {
  return fs
    .readdirSync('/proc/self/fd')
    .map((fd) => {
      try {
        return fs.readlinkSync(`/proc/self/fd/${fd}`).replace(/:\[\d+\]$/, '');
      } catch {
        return null; // the directory listing's own fd, closed by now
      }
    })
    .filter((x) => x !== null)
    .sort();
}

/**
 * The master's live child processes (workers, the spare), zombies left out: each holds an fd of the
 * master (its IPC channel).
 */
function children() {
  let n = 0;
  for (const task of fs.readdirSync('/proc/self/task')) {
    let pids = [];
    try {
      pids = fs.readFileSync(`/proc/self/task/${task}/children`, 'latin1').trim().split(' ').filter(Boolean);
    } catch {
      /* a thread gone meanwhile */
    }
    for (const pid of pids) {
      try {
        const stat = fs.readFileSync(`/proc/${pid}/stat`, 'latin1');
        if (stat[stat.lastIndexOf(')') + 2] !== 'Z') n++;
      } catch {
        /* reaped meanwhile */
      }
    }
  }
  return n;
}

/** Resident memory by kind (/proc/self/status, kB -> bytes): anonymous (heaps) and file-backed (the node binary's pages). */
function residentKinds() {
  const status = fs.readFileSync('/proc/self/status', 'latin1');
  const kb = (key) => Number(new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN) * 1024;
  return { rssAnon: kb('RssAnon'), rssFile: kb('RssFile') };
}

async function sample() {
  collect();
  const m = process.memoryUsage();
  const s = await c.status();
  const live = s.workers.reduce((n, w) => n + w.requests, 0);
  print('sample', [
    {
      heapUsed: m.heapUsed,
      heapTotal: m.heapTotal,
      external: m.external,
      arrayBuffers: m.arrayBuffers,
      rss: m.rss,
      ...residentKinds(),
      fds: fds().length,
      requests: s.retired.requests + live,
      exits: s.exits,
      workers: s.workers.length,
      children: children(),
      events: s.events.length,
      gc: typeof global.gc === 'function',
    },
  ]);
}

/** @type {import('../..').ClusterEvent[]} */
const EVENTS = ['strategy', 'listening', 'died', 'recycled', 'warning'];

if (c.isMaster) {
  for (const ev of EVENTS) c.on(ev, (...args) => print(ev, args));
  readline.createInterface({ input: process.stdin }).on('line', (line) => {
    const [cmd, arg] = line.trim().split(' ');
    if (cmd === 'reload')
      c.reload().then(
        () => print('reloaded', []),
        (e) => print('reload-failed', [e.message]),
      );
    else if (cmd === 'sample') sample().catch((e) => print('sample-failed', [e.message]));
    else if (cmd === 'fds') print('fds', [fds()]);
    else if (cmd === 'snapshot' && arg) {
      collect();
      v8.writeHeapSnapshot(arg);
      print('snapshot', [arg]);
    }
  });
}

c.listen((cb) => cb(http.createServer(handler)));
