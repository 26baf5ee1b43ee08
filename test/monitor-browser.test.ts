import t from 'tap';
import { launchBrowser, noBrowser } from './helpers/browser';
import * as path from 'node:path';
import { nth, startApp, tmpdir } from './helpers/cluster';

const { freePort } = require('./fixtures/monitor-ports.js') as { freePort: () => Promise<number> };

// Debian's chromium (apt-get install -y chromium), driven by playwright-core.

t.test(
  'the dashboard in a real browser: loads, lists the workers, follows a restart',
  { skip: noBrowser },
  async (t) => {
    const monPort = await freePort();
    const app = await startApp(t, { opts: { monPort } });
    const browser = await launchBrowser(t);
    const page = await browser.newPage();
    const problems: string[] = [];
    page.on('console', (m) => {
      if (m.type() === 'error') problems.push(m.text());
    });
    page.on('pageerror', (e) => problems.push(e.message));
    page.on('request', (r) => {
      if (!r.url().startsWith(`http://127.0.0.1:${monPort}/`)) problems.push(`external request: ${r.url()}`);
    });

    await page.goto(`http://127.0.0.1:${monPort}/`);
    const rows = (pids: number[]) => pids.map((p) => `#workers tr[data-pid="${p}"]`).join(', ');
    const [a, b] = app.workers();
    await page.locator(rows([a])).waitFor({ timeout: 15_000 });
    await page.locator(rows([b])).waitFor({ timeout: 15_000 });
    t.equal(await page.locator('#workers tr').count(), 2, 'two workers listed');
    t.match(await page.locator(`#workers tr[data-pid="${a}"]`).innerText(), /listening/, 'with their state');
    t.match(await page.locator('#cards').innerText(), /reuseport|round-robin|shared/, 'the strategy');
    t.match(await page.locator('#cards').innerText(), /AVAILABLE/, 'the ECV state');
    t.match(await page.locator('#events').innerText(), /forked/, 'recent events');

    process.kill(a, 'SIGKILL');
    const forked = await nth(app, 'forked', 3);
    const neo = forked.args[0] as number;
    await page.locator(`#workers tr[data-pid="${neo}"]`).waitFor({ timeout: 15_000 });
    await page.locator(`#workers tr[data-pid="${a}"]`).waitFor({ state: 'detached', timeout: 15_000 });
    t.pass(`the page shows the new worker ${neo} and no longer ${a}`);
    await page.locator(`#events`).getByText(String(neo)).first().waitFor({ timeout: 15_000 });
    t.match(await page.locator('#events').innerText(), /died/, 'and the death in the events');

    const shot = path.join(tmpdir('c2-shot-'), 'dashboard.png');
    await page.screenshot({ path: shot, fullPage: true });
    t.comment(`screenshot: ${shot}`);
    t.same(problems, [], 'no console error, no CSP violation, no external request');
  },
);
