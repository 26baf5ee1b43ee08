import t from 'tap';
import * as os from 'node:os';
import * as path from 'node:path';
import { Cluster } from '../dist/index.js';
import { EXIT_USAGE } from '../dist/shared/exit-codes.js';
import { FLOORS, parseBytes, reloadConcurrencyFor, resolveOptions } from '../dist/shared/options.js';
import { startApp } from './helpers/cluster';
import { CLI_APP, run } from './helpers/cli';

t.test('defaults are the documented ones', async (t) => {
  const o = resolveOptions({});
  t.equal(o.cluster, true);
  t.equal(o.port, 3000);
  t.equal(o.host, undefined);
  t.equal(o.noWorkers, os.availableParallelism());
  t.equal(o.pids, path.resolve('pids'));
  t.equal(o.monPort, 3001);
  t.equal(o.monHost, '127.0.0.1');
  t.same(o.ecv && { path: o.ecv.path, control: o.ecv.control }, { path: '/ecv', control: false });
  t.equal(o.timeout, 30000);
  t.equal(o.connThreshold, 0, 'connThreshold is off by default');
  t.equal(o.strategy, 'auto');
  t.equal(o.gracefulTimeout, 30000);
  t.equal(o.drainDelay, 0);
  t.equal(o.maxRequests, 0);
  t.equal(o.maxMemory, 0);
  t.equal(o.maxAge, 0);
  t.equal(o.heartbeatTimeout, 30000);
  t.equal(o.portBusyExitCode, 69);
});

t.test('ecv is merged with its defaults, not replaced', async (t) => {
  const o = resolveOptions({ ecv: { control: true } });
  t.ok(o.ecv);
  if (o.ecv) {
    t.equal(o.ecv.path, '/ecv');
    t.equal(o.ecv.control, true);
    t.ok(o.ecv.allow.includes('127.0.0.1'));
  }
  t.equal(resolveOptions({ ecv: false }).ecv, false);
});

t.test('sizes', async (t) => {
  t.equal(parseBytes('maxMemory', '512M'), 512 * 1024 ** 2);
  t.equal(parseBytes('maxMemory', '1.5G'), 1.5 * 1024 ** 3);
  t.equal(parseBytes('maxMemory', '300MB'), 300 * 1024 ** 2);
  t.equal(parseBytes('maxMemory', 4096), 4096);
  t.throws(() => parseBytes('maxMemory', '12 parsecs'), /maxMemory.*K, M, G/);
});

const bad: [Record<string, unknown>, RegExp, ErrorConstructor][] = [
  [{ port: 'abc' }, /"port" is "abc"; it must be a port number from 0 to 65535/, TypeError],
  [{ port: 70000 }, /"port" is 70000/, RangeError],
  [{ port: -1 }, /"port" is -1/, RangeError],
  [{ port: 1.5 }, /"port" is 1.5/, TypeError],
  [{ noWorkers: 0 }, /"noWorkers" is 0; it must be a whole number of workers from 1/, RangeError],
  [{ noWorkers: 1.5 }, /"noWorkers" is 1.5/, TypeError],
  [{ timeout: -5 }, /"timeout" is -5; it must be a whole number of milliseconds >= 0/, RangeError],
  [{ pids: 42 }, /"pids" is 42; it must be a non-empty string/, TypeError],
  [{ cluster: 'yes' }, /"cluster" is "yes"; it must be true or false/, TypeError],
  [{ monPort: 'x' }, /"monPort"/, TypeError],
  [
    { strategy: 'fastest' },
    /"strategy" is "fastest"; it must be one of "auto", "reuseport", "round-robin", "shared"/,
    TypeError,
  ],
  [{ ecv: { path: 'ecv' } }, /"ecv.path" is "ecv"; it must be a path starting with "\/"/, TypeError],
  [{ ecv: { validator: 1 } }, /"ecv.validator"/, TypeError],
  [{ ecv: { allow: '1.2.3.4' } }, /"ecv.allow"/, TypeError],
  [{ ecv: 'on' }, /"ecv"/, TypeError],
  [{ maxMemory: 'lots' }, /"maxMemory" is "lots"/, TypeError],
  [{ connThreshold: -1 }, /"connThreshold" is -1/, RangeError],
  [
    { reloadConcurrency: 0 },
    /"reloadConcurrency" is 0; it must be a whole number of workers from 1 to 1024/,
    RangeError,
  ],
  [{ reloadConcurrency: '2.5' }, /"reloadConcurrency" is "2.5"/, TypeError],
  [{ portBusyExitCode: 300 }, /"portBusyExitCode" is 300; it must be an exit code from 1 to 255/, RangeError],
];

t.test('a numeric option given as a plain decimal string is that number', async (t) => {
  const o = resolveOptions({
    port: '3008',
    monPort: '3009',
    noWorkers: '3',
    timeout: '0',
    connThreshold: '500',
    gracefulTimeout: '1000',
    drainDelay: '250',
    maxRequests: '100',
    maxRequestsJitter: '10',
    maxMemory: '16777216',
    maxAge: '60000',
    heartbeatTimeout: '0',
    listenTimeout: '5000',
    portBusyExitCode: '75',
  });
  t.same(
    [
      o.port,
      o.monPort,
      o.noWorkers,
      o.timeout,
      o.connThreshold,
      o.gracefulTimeout,
      o.drainDelay,
      o.maxRequests,
      o.maxRequestsJitter,
      o.maxMemory,
      o.maxAge,
      o.heartbeatTimeout,
      o.listenTimeout,
      o.portBusyExitCode,
    ],
    [3008, 3009, 3, 0, 500, 1000, 250, 100, 10, 16777216, 60000, 0, 5000, 75],
  );
  t.equal(resolveOptions({ port: '0' }).port, 0, '"0" picks a free port like 0');
  t.equal(resolveOptions({ connThreshold: '0', maxMemory: '0' }).connThreshold, 0, '"0" turns a trigger off like 0');
  t.equal(resolveOptions({ maxMemory: '0' }).maxMemory, 0);
  t.equal(resolveOptions({ port: '03000' }).port, 3000, 'leading zeros are decimal, not octal');
  // Validated as the number would be.
  t.throws(() => resolveOptions({ port: '70000' }), RangeError);
  t.throws(() => resolveOptions({ port: '70000' }), /"port" is "70000"; it must be a port number from 0 to 65535/);
  t.throws(() => resolveOptions({ noWorkers: '0' }), /"noWorkers" is "0"; it must be a whole number of workers from 1/);
  t.throws(() => resolveOptions({ portBusyExitCode: '256' }), RangeError);
});

t.test('any other string for a numeric option is a TypeError naming the option and the value', async (t) => {
  const strings = ['3000abc', '', ' 12', '12 ', '1e3', '0x10', '-1', '+5', '1.5', '1_000', '٣٠٠٠', 'Infinity', 'NaN'];
  const numeric = [
    'port',
    'monPort',
    'noWorkers',
    'timeout',
    'connThreshold',
    'gracefulTimeout',
    'drainDelay',
    'maxRequests',
    'maxRequestsJitter',
    'maxAge',
    'heartbeatTimeout',
    'listenTimeout',
    'portBusyExitCode',
  ];
  for (const name of numeric) {
    for (const v of strings) {
      const shown = JSON.stringify(v).replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
      t.throws(() => resolveOptions({ [name]: v }), TypeError, `${name}: ${JSON.stringify(v)}`);
      t.throws(
        () => resolveOptions({ [name]: v }),
        new RegExp(`option "${name}" is ${shown}; it must be`),
        `${name}: ${JSON.stringify(v)}`,
      );
    }
  }
  t.throws(() => new Cluster({ port: '3000abc' }), /option "port" is "3000abc"; it must be a port number/);
});

t.test('invalid options throw a TypeError or RangeError naming the option', async (t) => {
  for (const [opts, msg, E] of bad) {
    t.throws(() => new Cluster(opts as never), E, JSON.stringify(opts));
    t.throws(() => new Cluster(opts as never), msg, JSON.stringify(opts));
  }
  t.throws(() => new Cluster('port=3000' as never), /options must be an object/);
});

t.test('unknown option names are reported as warnings', async (t) => {
  const warnings: string[] = [];
  const on = (w: Error) => warnings.push(w.message);
  process.on('warning', on);
  t.teardown(() => {
    process.off('warning', on);
  });
  resolveOptions({ prot: 3000, ecv: { pth: '/x' } } as never);
  await new Promise((r) => setImmediate(r));
  t.match(warnings.join('\n'), /unknown option "prot"/);
  t.match(warnings.join('\n'), /unknown option "ecv.pth"/);
});

t.test('a master with a bad option fails before forking anything', async (t) => {
  const app = await startApp(t, { opts: { noWorkers: 0 }, listening: 0, timeout: 100 }).catch((e: Error) => e);
  t.ok(app, 'started');
  if (app instanceof Error) throw app;
  const { code } = await app.exited;
  t.not(code, 0, 'exits non-zero');
  t.match(app.stderr(), /RangeError: cluster2: option "noWorkers" is 0/);
  t.equal(app.events.filter((e) => e.ev === 'forked').length, 0, 'no worker forked');
});

t.test('reloadConcurrency: 1 up to 4 workers, then 25% of them; or the option', async (t) => {
  const auto = resolveOptions({});
  t.same(
    [1, 2, 4, 5, 7, 8, 12, 32, 1024].map((n) => reloadConcurrencyFor(auto, n)),
    [1, 1, 1, 1, 1, 2, 3, 8, 256],
  );
  t.equal(reloadConcurrencyFor(resolveOptions({ reloadConcurrency: 3 }), 32), 3, 'the option wins');
});

t.test(
  'values that cannot be meant are refused below a floor, naming the option, the value and the floor',
  async (t) => {
    const below: [Record<string, unknown>, string][] = [
      [
        { heartbeatTimeout: 1 },
        'option "heartbeatTimeout" is 1; it must be at least 100 ms, or 0 / false to turn it off',
      ],
      [{ heartbeatTimeout: 99 }, 'option "heartbeatTimeout" is 99; it must be at least 100 ms'],
      [
        { maxMemory: '1K' },
        'option "maxMemory" is "1K"; it must be at least 16M (16777216 bytes), or 0 / false to turn it off',
      ],
      [{ maxMemory: 16 * 1024 ** 2 - 1 }, 'option "maxMemory" is 16777215; it must be at least 16M'],
      [{ listenTimeout: 1 }, 'option "listenTimeout" is 1; it must be at least 100 ms'],
      [{ timeout: 5 }, 'option "timeout" is 5; it must be at least 100 ms, or 0 / false to turn it off'],
      [{ maxAge: 10 }, 'option "maxAge" is 10; it must be at least 1000 ms, or 0 / false to turn it off'],
    ];
    for (const [opts, message] of below) {
      t.throws(() => resolveOptions(opts as never), RangeError, JSON.stringify(opts));
      t.throws(() => resolveOptions(opts as never), { message: `cluster2: ${message}` }, JSON.stringify(opts));
    }
    // At the floor, and off, are fine.
    const at = resolveOptions({
      heartbeatTimeout: FLOORS.heartbeatTimeout,
      maxMemory: '16M',
      listenTimeout: FLOORS.listenTimeout,
      timeout: FLOORS.timeout,
      maxAge: FLOORS.maxAge,
    });
    t.same(
      [at.heartbeatTimeout, at.maxMemory, at.listenTimeout, at.timeout, at.maxAge],
      [100, 16777216, 100, 100, 1000],
    );
    const off = resolveOptions({ heartbeatTimeout: 0, maxMemory: false as never, timeout: 0, maxAge: 0 });
    t.same(
      [off.heartbeatTimeout, off.maxMemory, off.timeout, off.maxAge],
      [0, 0, 0, 0],
      '0 / false still turn them off',
    );
    // No floor where a small value is a choice: no grace, a recycle after every request.
    const small = resolveOptions({ gracefulTimeout: 0, drainDelay: 1, maxRequests: 1, connThreshold: 1 });
    t.same([small.gracefulTimeout, small.drainDelay, small.maxRequests, small.connThreshold], [0, 1, 1, 1]);
  },
);

t.test('the command line refuses them with exit 64 and the option and flag named', async (t) => {
  const cases: [string[], RegExp][] = [
    [
      ['--heartbeat-timeout', '1'],
      /option "heartbeatTimeout" is 1; it must be at least 100 ms.*\(flag --heartbeat-timeout\)/,
    ],
    [['--max-memory', '1K'], /option "maxMemory" is "1K"; it must be at least 16M.*\(flag --max-memory\)/],
    [['--listen-timeout', '10'], /option "listenTimeout" is 10; it must be at least 100 ms/],
  ];
  const results = await Promise.all(cases.map(([args]) => run(['start', CLI_APP, '--no-mon-port', ...args])));
  cases.forEach(([args, line], i) => {
    t.equal(results[i].code, EXIT_USAGE, `${args.join(' ')}: exit 64`);
    t.match(results[i].stderr, line, `${args.join(' ')}: says why`);
  });
});
