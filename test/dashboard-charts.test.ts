// The dashboard's charts in headless Chromium: requests per second, RSS and
// event-loop delay per worker over the last five minutes, with the recycles
// and the reload marked; inline SVG, nothing loaded from elsewhere. The
// screenshot's path is in the test's output.
import t from 'tap';
import { launchBrowser, noBrowser } from './helpers/browser';
import * as path from 'node:path';
import { startApp, tmpdir, until } from './helpers/cluster';
import { startLoad } from './helpers/http';

const { freePort } = require('./fixtures/monitor-ports.js') as { freePort: () => Promise<number> };

t.test(
  'the dashboard draws charts of the last five minutes, with reloads and recycles marked',
  { skip: noBrowser },
  async (t) => {
    const monPort = await freePort();
    const app = await startApp(t, { opts: { monPort, requestHistogram: true } });
    const load = startLoad(app.port, { connections: 4 });
    t.teardown(() => load.stop().then(() => {}));
    await load.served(500, 20_000);
    app.send('reload');
    await app.waitFor('reload-ok', undefined, 60_000);
    await load.served(500, 20_000);

    const browser = await launchBrowser(t);
    const page = await browser.newPage({ viewport: { width: 1240, height: 900 } });
    const problems: string[] = [];
    page.on('console', (m) => {
      if (m.type() === 'error') problems.push(m.text());
    });
    page.on('pageerror', (e) => problems.push(e.message));
    page.on('request', (r) => {
      if (!r.url().startsWith(`http://127.0.0.1:${monPort}/`)) problems.push(`external request: ${r.url()}`);
    });
    await page.goto(`http://127.0.0.1:${monPort}/`);

    const fig = (name: string) => page.locator(`figure[data-chart="${name}"]`);
    await fig('rate').locator('polyline').waitFor({ timeout: 20_000 });
    /** The points of a chart's lines, once every one has at least n. */
    const points = async (name: string, n: number) => {
      const lines = await fig(name)
        .locator('polyline')
        .evaluateAll((ls) => ls.map((l) => (l.getAttribute('points') ?? '').split(' ').filter(Boolean).length));
      return lines.length > 0 && lines.every((k) => k >= n) ? lines : null;
    };
    await until(() => points('rate', 3), 20_000, 'a requests-per-second line of 3 points');
    const rss = (await until(() => points('rss', 2), 20_000, 'RSS lines'))!;
    t.equal(rss.length, 2, 'RSS: one line per slot, across the reload');
    await until(() => points('p99', 2), 20_000, 'a request duration p99 line (requestHistogram)');
    t.pass('p99 latency drawn');
    const delay = (await until(() => points('delay', 2), 20_000, 'event-loop delay lines'))!;
    t.equal(delay.length, 2, 'event-loop delay: one line per slot');
    for (const name of ['rate', 'p99', 'rss', 'delay']) {
      t.ok((await fig(name).locator('[data-marker="reloaded"]').count()) >= 1, `${name}: the reload is marked`);
      t.ok(
        (await fig(name).locator('[data-marker="recycled"]').count()) >= 2,
        `${name}: each worker replaced by the reload is marked`,
      );
    }
    t.match(
      await fig('rate').locator('[data-marker="reloaded"] title').first().textContent(),
      /^reloaded at .+: reload of 2 worker\(s\)$/,
      'a mark says what happened when',
    );
    const max = Number((await fig('rate').locator('text').nth(2).textContent()) ?? 0);
    t.ok(max > 0, `the requests-per-second axis goes to ${max}`);

    const shot = path.join(tmpdir('c2-shot-'), 'dashboard-charts.png');
    await page.locator('#charts').screenshot({ path: shot });
    t.comment(`screenshot of the charts: ${shot}`);
    t.same(problems, [], 'no console error, no CSP violation, no external request');
  },
);
