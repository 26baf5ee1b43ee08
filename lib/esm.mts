// import { Cluster } from 'cluster2' (and import Cluster from 'cluster2').
import api from './index.js';

export const {
  Cluster, EXIT_CANTCREAT, EXIT_CODES, EXIT_CRASH_LOOP, EXIT_KILLED, EXIT_NOHOST, EXIT_OK, EXIT_PORT_BUSY, EXIT_USAGE, STRATEGIES, implementation,
} = api;
export default api.Cluster;
