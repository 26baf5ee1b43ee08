'use strict';
// The command line of `npm run bench` (node bench/run.js).
const { STRATEGIES } = require('./servers');

const SCENARIOS = [
  'steady',
  'recycle',
  'reload',
  'shutdown',
  'port-busy',
  'sizes',
  'shutdown-burst',
  'websocket',
  'http2',
  'upgrade',
];
/**
 * The long scenarios: only in the full run, or when --scenarios names them. --quick (the
 * first run a user makes to choose a strategy; at most 2 minutes on 2 cores) runs the others,
 * each once per strategy.
 */
const LONG_SCENARIOS = ['sizes', 'websocket', 'http2', 'upgrade'];
/** The numbers of workers of the sizes scenario unless --workers lists several. */
const SIZES = [2, 8, 32];

const USAGE = `usage: node bench/run.js [options]   (npm run bench -- [options]; run \`npm run compile\` first)

  --quick              a short run (under 2 minutes on 2 cores): 1 repeat, 2 s loads, and
                       without the long scenarios (${LONG_SCENARIOS.join(', ')}) unless
                       --scenarios names them
  --strategies a,b     any of ${STRATEGIES.join(', ')} (default: all)
  --scenarios x,y      any of ${SCENARIOS.join(', ')} (default: all; with
                       --quick all but the long ones)
  --loader NAME        autocannon (default) or wrk (when installed)
  --repeats N          runs of each figure (default: 3 of each steady load, 5 of the
                       other scenarios; 1 with --quick)
  --workers N[,N...]   workers per cluster (default 2); a list (2,8,32) is the sweep of the
                       sizes scenario (default ${SIZES.join(',')}), the first its size elsewhere
  --connections N      concurrent connections of the load (default 50)
  --json FILE          write every figure as JSON
  --html FILE          write a self-contained page with charts
  --no-spare          cluster2 without its spare worker (option spare: false): every
                       replacement is a fresh fork
  --runtime NAME       node (default) or bun, or the path of either: what runs the servers
                       under test (cluster2's masters and workers, the reference); the bench
                       and its load clients stay on Node (bun: CLUSTER2_BENCH_BUN, or PATH)
  --peer pm2           also PM2 cluster mode, through the same scenarios, when pm2 is
                       found (PM2_BIN, node_modules/.bin or PATH); skipped with a note if not
  -h, --help           this text
`;

function list(v, allowed, name) {
  const items = v
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  for (const i of items)
    if (!allowed.includes(i)) throw new Error(`${name}: unknown "${i}" (allowed: ${allowed.join(', ')})`);
  return items;
}

function int(v, name, min) {
  const n = Number(v);
  if (!Number.isInteger(n) || n < min) throw new Error(`${name} must be a whole number >= ${min}; got "${v}"`);
  return n;
}

function parse(argv) {
  let scenariosGiven = false;
  const o = {
    quick: false,
    strategies: STRATEGIES,
    scenarios: SCENARIOS,
    loader: 'autocannon',
    repeats: null,
    workers: 2,
    connections: 50,
    json: null,
    html: null,
    peers: [],
    duration: null,
    help: false,
    spare: true,
    sizes: SIZES,
    runtime: null,
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const [flag, inline] =
      a.startsWith('--') && a.includes('=')
        ? [a.slice(0, a.indexOf('=')), a.slice(a.indexOf('=') + 1)]
        : [a, undefined];
    const value = () => {
      if (inline !== undefined) return inline;
      const v = argv[++i];
      if (v === undefined) throw new Error(`${flag} needs a value`);
      return v;
    };
    switch (flag) {
      case '--quick':
        o.quick = true;
        break;
      case '--strategies':
        o.strategies = list(value(), STRATEGIES, flag);
        break;
      case '--scenarios':
        o.scenarios = list(value(), SCENARIOS, flag);
        scenariosGiven = true;
        break;
      case '--loader':
        o.loader = list(value(), ['autocannon', 'wrk'], flag)[0];
        break;
      case '--repeats':
        o.repeats = int(value(), flag, 1);
        break;
      case '--workers': {
        const ns = value()
          .split(',')
          .map((x) => int(x.trim(), flag, 1));
        o.workers = ns[0];
        if (ns.length > 1) o.sizes = ns;
        break;
      }
      case '--connections':
        o.connections = int(value(), flag, 1);
        break;
      case '--json':
        o.json = value();
        break;
      case '--html':
        o.html = value();
        break;
      case '--no-spare':
        o.spare = false;
        break;
      case '--runtime':
        o.runtime = value();
        break;
      case '--peer':
        o.peers.push(...list(value(), ['pm2'], flag));
        break;
      // Hidden: seconds of each steady load (the test uses 1).
      case '--duration': {
        const d = Number(value());
        if (!(d > 0)) throw new Error('--duration must be a number of seconds > 0');
        o.duration = d;
        break;
      }
      case '-h':
      case '--help':
        o.help = true;
        break;
      default:
        throw new Error(`unknown option "${a}"`);
    }
  }
  if (o.duration === null) o.duration = o.quick ? 2 : 5;
  if (o.quick && !scenariosGiven) o.scenarios = SCENARIOS.filter((x) => !LONG_SCENARIOS.includes(x));
  return o;
}

module.exports = { parse, USAGE, SCENARIOS, LONG_SCENARIOS };
