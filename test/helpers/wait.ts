// The suite's one way to wait. Two shapes, one argument order: what to wait for first, then
// the timeout (ms), then (for polling) a label for the error message.
//
//   await until(() => fs.existsSync(f), 10_000, 'the pid file');        // poll a function
//   await app.waitFor('died', (e) => e.args[0] === pid, 20_000);        // wait for an event
//
// `until` polls every 20 ms until fn() returns something truthy and resolves with it; past
// the deadline it rejects naming the label. Event handles (test/helpers/cluster.ts `start`,
// test/helpers/cli.ts `startCli`, test/helpers/chaos/started.ts) keep a log of events and
// expose `waitFor(event, pred?, timeout?)`: it resolves with the first logged event of that
// name matching pred (also one logged before the call), and rejects at the timeout or when
// the process exits first. Never sleep a fixed time to wait for something: poll or wait for
// its event.

type Falsy = null | undefined | false | 0 | '';

/** Poll until fn() is truthy (and resolve with it), or reject after `timeout` ms. */
export async function until<T>(
  fn: () => T | Falsy | Promise<T | Falsy>,
  timeout = 10_000,
  label = 'condition',
): Promise<T> {
  const deadline = Date.now() + timeout;
  for (;;) {
    const v = await fn();
    if (v) return v as T;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeout} ms waiting for ${label}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
