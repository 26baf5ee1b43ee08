'use strict';
// The same app with no cluster2 at all: what a bare child_process.fork()
// costs until the server listens. Reports {listening: port, loaded, at} over IPC and
// exits when its parent disconnects.
const http = require('node:http');
const { handler } = require('./handler');

const loaded = performance.now();
const server = http.createServer(handler);
server.listen({ host: '127.0.0.1', port: 0 }, () => {
  // On its own clock: ms from its start to its code loaded, to listening.
  const { port } = /** @type {import('node:net').AddressInfo} */ (server.address());
  process.send({ listening: port, loaded, at: performance.now() });
});
process.on('disconnect', () => process.exit(0));
