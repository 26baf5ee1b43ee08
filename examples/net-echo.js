// The original README's net example: an echo server on a cluster of workers.
// Run: node examples/net-echo.js   (PORT and MON_PORT override 3000 and 3001)
var Cluster = require('..'),
  net = require('net');
var server = net.createServer(function (c) {
  c.on('end', function () {
    console.log('server disconnected');
  });
  c.write('hello\r\n');
  c.pipe(c);
});
var c = new Cluster({
  port: Number(process.env.PORT) || 3000,
  monPort: Number(process.env.MON_PORT) || 3001,
  cluster: true,
});
c.listen(function (cb) {
  cb(server);
});
