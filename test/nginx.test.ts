// The nginx recipe of docs/load-balancers.md, as written (only addresses and the listen port
// are the test's), in front of two cluster2 instances: keep-alive GET and
// POST load through a rolling restart of both fails 0 requests.
import t from 'tap';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { everyInstanceInRotation, startBalancer } from './helpers/balancer';
import { startApp, tmpdir, until, type App } from './helpers/cluster';
import { request, startLoad } from './helpers/http';
import { rollingRestart } from './helpers/rolling';
import { docBlocks, docText } from './helpers/doc-blocks';

const { freePorts } = require('./fixtures/monitor-ports.js') as { freePorts: (n: number) => Promise<number[]> };

// Debian's nginx (apt-get install -y nginx).
const NGINX = ['/usr/sbin/nginx', '/usr/bin/nginx'].find((p) => fs.existsSync(p));
const recipe = docBlocks('docs/load-balancers.md', 'nginx', 'nginx')[0];
/** The app options the guide gives with the recipe: `new Cluster({ port: 3000, ... })` after the block. */
const section = docText('docs/load-balancers.md').split('## nginx\n')[1];

const appOptions = new Function(`return (${/new Cluster\((\{ port: 3000, [^)]*\})\)/.exec(section)![1]})`)() as {
  drainDelay: number;
  strategy?: string;
};
const drainDelay = appOptions.drainDelay;

/** A whole nginx.conf: the recipe inside an http block, files in `dir`, no daemon. */
function config(dir: string, front: number, a: number, b: number): string {
  const http = recipe
    .replace('10.0.0.11:3000', `127.0.0.1:${a}`)
    .replace('10.0.0.12:3000', `127.0.0.1:${b}`)
    .replace('listen 80;', `listen 127.0.0.1:${front};`);
  const temp = ['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi']
    .map((k) => `    ${k}_temp_path ${dir}/${k};`)
    .join('\n');
  return `daemon off;
user root;
worker_processes 1;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log warn;
events { worker_connections 1024; }
http {
    access_log off;
${temp}
${http}
}
`;
}

const SKIP = NGINX ? false : 'nginx is not installed (apt-get install -y nginx)';

/**
 * A POST nginx wrote into a connection still in a worker's accept queue when
 * the shutdown stopped accepting is reset, and nginx does not retry a POST.
 * Once a shutdown serves every connection the kernel accepted (issue #19),
 * this is false and the POST assertion holds like the GET one.
 */
const POST_TODO: string | false = false;

t.test(
  'nginx in front of two instances: keep-alive GET and POST through a rolling restart fail 0 requests',
  { skip: SKIP },
  async (t) => {
    t.match(
      recipe,
      /keepalive_timeout 4s;/,
      "the recipe sets the upstream keepalive_timeout below Node's 5 s keepAliveTimeout",
    );
    t.ok(drainDelay > 4000, 'drainDelay is longer than the upstream keepalive_timeout');
    const [front, portA, portB] = await freePorts(3);
    const instance = (port: number) =>
      startApp(t, { opts: { ...appOptions, port, noWorkers: 2, gracefulTimeout: 10_000 } });
    const apps: Record<'A' | 'B', App> = { A: await instance(portA), B: await instance(portB) };

    const dir = tmpdir('c2-nginx-');
    const cfg = path.join(dir, 'nginx.conf');
    fs.writeFileSync(cfg, config(dir, front, portA, portB));
    const errorLog = path.join(dir, 'error.log');
    const ngx = startBalancer(t, 'nginx', [NGINX!, '-c', cfg, '-p', dir, '-e', errorLog], { logFile: errorLog });
    await everyInstanceInRotation(ngx, front, apps);
    t.equal((await request(front, '/ecv')).status, 404, 'ECV is not exposed through nginx');

    const get = startLoad(front, { connections: 6 });
    const post = startLoad(front, { connections: 4, method: 'POST', body: 'x'.repeat(2000) });
    const served = (app: App) =>
      app.workers().reduce((n, p) => n + (get.result.byPid[p] ?? 0) + (post.result.byPid[p] ?? 0), 0);
    /** Resolves once `app` has served n more responses through nginx. */
    const servesAgain = async (app: App, n = 50) => {
      const target = served(app) + n;
      await until(() => served(app) >= target, 30_000, `instance ${app.pid} back in rotation`);
    };
    await get.served(300, 20_000);
    await post.served(200, 20_000);
    t.ok(served(apps.A) > 0 && served(apps.B) > 0, 'the load reaches both instances');

    // Rolling restart: A, then B. Each: SIGTERM, wait for the exit, start again, wait until it serves through nginx.
    await rollingRestart(t, apps, { A: portA, B: portB }, instance, servesAgain);
    await get.served(300, 20_000);
    await post.served(200, 20_000);
    const [g, p] = [await get.stop(), await post.stop()];
    t.comment(
      `through nginx: GET ${g.ok} ok, ${g.failed} failed ${JSON.stringify(g.errors)}; POST ${p.ok} ok, ${p.failed} failed ${JSON.stringify(p.errors)}`,
    );
    t.equal(g.failed, 0, 'no GET failed through the two restarts');
    t.equal(p.failed, 0, 'no POST failed through the two restarts', { todo: POST_TODO });
    t.ok(g.ok > 500 && p.ok > 300, 'under load throughout');
    if (g.failed + p.failed > 0)
      t.comment(
        ngx
          .log()
          .split('\n')
          .filter((l) => /\[(error|crit)\]/.test(l))
          .slice(0, 10)
          .join('\n'),
      );
    t.notMatch(
      ngx.log(),
      /\[(error|crit|alert|emerg)\].*(upstream prematurely closed|reset by peer|no live upstreams)/,
      'nginx logged no failed upstream request',
      { todo: POST_TODO },
    );
  },
);
