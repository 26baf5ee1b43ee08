// `npm start`: a demo cluster on localhost with ECV and the monitor.
const http = require('node:http');
const Cluster = require('..');

const port = Number(process.env.PORT) || 3000;
const monPort = Number(process.env.MON_PORT) || 3001;
const c = new Cluster({ port, monPort, host: '127.0.0.1', ecv: { control: true } });

if (c.isMaster) {
  c.on('strategy', (name, p) => {
    console.log(`cluster2 demo (master ${process.pid}, strategy ${name})`);
    console.log(`  app      http://127.0.0.1:${p}/`);
    console.log(`  ECV      http://127.0.0.1:${p}/ecv   (POST /ecv/disable, /ecv/enable)`);
    console.log(`  monitor  http://127.0.0.1:${monPort}/`);
    console.log('  Ctrl-C shuts down gracefully; kill -HUP', process.pid, 'reloads');
  });
  for (const ev of ['forked', 'died', 'recycled', 'warning']) c.on(ev, (...a) => console.log(`[${ev}]`, ...a));
}

c.listen((cb) => cb(http.createServer((req, res) => res.end(`hello from worker ${process.pid}\n`))));
