// The original README's http example. Run: node examples/http.js   (PORT and MON_PORT override 3000 and 3001)
var Cluster = require('..'),
  http = require('http');
var server = http.createServer(function (req, res) {
  res.writeHead(200);
  res.end('hello');
});
var c = new Cluster({
  port: Number(process.env.PORT) || 3000,
  monPort: Number(process.env.MON_PORT) || 3001,
});
c.listen(function (cb) {
  cb(server);
});
