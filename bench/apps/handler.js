'use strict';
// The request handler every server under test runs: the same work whatever the strategy.
//   GET /            -> "hello <pid>" (the bench counts each worker's share by this pid)
//   GET /slow?ms=N   -> the same, N ms later (requests in flight during a shutdown)

const BODY = `hello ${process.pid}`;

function handler(req, res) {
  const url = req.url;
  if (url.length > 5 && url.startsWith('/slow')) {
    const m = /ms=(\d+)/.exec(url);
    setTimeout(() => res.end(BODY), m ? Number(m[1]) : 200);
    return;
  }
  res.end(BODY);
}

module.exports = { handler };
