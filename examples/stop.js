// Stop a running cluster at once (workers killed). Same pids dir as the app: ./pids by default.
var Cluster = require('..');
var c = new Cluster({ pids: process.env.PIDS || undefined });
c.stop().then(
  function () {
    console.log('stopped');
  },
  function (e) {
    console.error(e.message);
    process.exit(1);
  },
);
