// The original README's events example: log what the cluster does.
// Run: node examples/events.js   (PORT and MON_PORT override 3000 and 3001)
var Cluster = require('..'),
  http = require('http');
var server = http.createServer(function (req, res) {
  res.writeHead(200);
  res.end('hello');
});
var c = new Cluster({
  cluster: true,
  port: Number(process.env.PORT) || 3000,
  monPort: Number(process.env.MON_PORT) || 3001,
});
c.on('died', function (pid) {
  console.log('Worker ' + pid + ' died');
});
c.on('forked', function (pid) {
  console.log('Worker ' + pid + ' forked');
});
c.on('SIGKILL', function () {
  // SIGKILL cannot be caught by any process; kept from the original README.
  console.log('Got SIGKILL');
});
c.on('SIGTERM', function () {
  console.log('Got SIGTERM - shutting down');
});
c.on('SIGINT', function () {
  console.log('Got SIGINT');
});
c.listen(function (cb) {
  cb(server);
});
