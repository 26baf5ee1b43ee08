'use strict';
// The same app with no cluster2 at all: what a bare child_process.fork()
// costs until the server listens. Reports {listening: port} over IPC and
// exits when its parent disconnects.
const http = require('node:http');
const { handler } = require('./handler');

const server = http.createServer(handler);
server.listen({ host: '127.0.0.1', port: 0 }, () => {
  process.send({ listening: server.address().port });
});
process.on('disconnect', () => process.exit(0));
