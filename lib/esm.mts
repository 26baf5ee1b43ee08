// import { Cluster } from 'cluster2' (and import Cluster from 'cluster2').
// The values are named again here: `export * from './index.js'` would miss `implementation` (a
// getter Node's CommonJS export detection does not see) and add `__esModule`.
// test/entry-points.test.ts checks that this list and index.ts's agree.
import api from './index.js';

export const {
  EXIT_CANTCREAT,
  EXIT_CODES,
  EXIT_CRASH_LOOP,
  EXIT_KILLED,
  EXIT_NOHOST,
  EXIT_OK,
  EXIT_PORT_BUSY,
  EXIT_USAGE,
  STRATEGIES,
  StartError,
  implementation,
} = api;
// A value and a type: `new Cluster(...)`, `const c: Cluster`.
export const Cluster = api.Cluster;
export type Cluster = api.Cluster;
export default Cluster;
// Every type (ClusterOptions, MasterStatus, ClusterEvents ...).
export type * from './index.js';
