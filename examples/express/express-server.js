// The original README's express example, with express() in place of express 2's createServer().
// Run: node examples/express/express-server.js, then GET http://localhost:3000/ecv
// (PORT and MON_PORT override 3000 and 3001)
var Cluster = require('../..'),
  express = require('express');
var app = express();
app.get('/', function (req, res) {
  res.send('hello');
});
var c = new Cluster({
  port: Number(process.env.PORT) || 3000,
  monPort: Number(process.env.MON_PORT) || 3001,
});
c.listen(function (cb) {
  cb(app);
});
