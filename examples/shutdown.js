// Shut a running cluster down gracefully: no new connections, in-flight requests finish.
var Cluster = require('..');
var c = new Cluster({ pids: process.env.PIDS || undefined });
c.shutdown().then(
  function () {
    console.log('shut down');
  },
  function (e) {
    console.error(e.message);
    process.exit(1);
  },
);
