// The lose-nothing scenarios for the reuseport strategy through Node's own reusePort listen
// option (Node >= 22.12), without the addon (CLUSTER2_NATIVE=0): this Node when it has the
// option, else a Node 22 fetched from npm (test/helpers/fetched.ts) runs the masters.
import t from 'tap';
import { nodeHasReusePort } from '../dist/shared/native.js';
import { startApp } from './helpers/cluster';
import { node22 } from './helpers/fetched';
import { scenarios } from './helpers/lose-nothing';

const run = { exec: nodeHasReusePort ? undefined : node22(), env: { CLUSTER2_NATIVE: '0' }, ownSockets: true };

t.test('the masters run reuseport without the addon', async (t) => {
  const app = await startApp(t, { opts: { strategy: 'reuseport' }, ...run });
  const s = app.events.find((e) => e.ev === 'strategy');
  t.match(JSON.stringify(s?.args), /reuseport/, `strategy event: ${JSON.stringify(s?.args)}`);
  t.match(JSON.stringify(s?.args), /node|js/i, 'through Node (no addon)');
});

scenarios(t, 'reuseport', run);
