'use strict';
// The servers of the long-lived scenarios (bench/long-lived.js), with no drain code of their own:
//   ws: the bench handler plus a WebSocket echo (ws) that first says "pid <pid>";
//   h2: the bench handler over HTTP/2 without TLS (h2c).

function create(kind, handler) {
  if (kind === 'h2') return require('node:http2').createServer(handler);
  const server = require('node:http').createServer(handler);
  const { WebSocketServer } = require('ws');
  new WebSocketServer({ server }).on('connection', (ws) => {
    ws.send(`pid ${process.pid}`);
    ws.on('message', (m) => ws.send(String(m)));
  });
  return server;
}

module.exports = { create };
