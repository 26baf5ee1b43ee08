// Debian's Chromium, driven by playwright-core, for the monitor page tests.
import * as fs from 'node:fs';

const CHROMIUM = '/usr/bin/chromium';
/** No background networking: this machine's closed network refuses those connections. */
const ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
];

/** The tap skip option: false, or why there is no browser. */
export const noBrowser: string | false = fs.existsSync(CHROMIUM)
  ? false
  : `${CHROMIUM} is not installed (apt-get install -y chromium)`;

/** A headless Chromium, closed at the test's teardown. */
export async function launchBrowser(t: { teardown(fn: () => unknown): void }) {
  const { chromium } = await import('playwright-core');
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: ARGS, headless: true, timeout: 60_000 });
  t.teardown(() => browser.close());
  return browser;
}
