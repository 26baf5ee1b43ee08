// require('cluster2') is the Cluster constructor itself (as the original was),
// with every named export on it too: require('cluster2').Cluster, .EXIT_PORT_BUSY ...
import * as api from './index';

const Cluster = api.Cluster as typeof api.Cluster & typeof api & { default: typeof api.Cluster };
for (const [k, v] of Object.entries(api)) if (k !== 'Cluster') Object.defineProperty(Cluster, k, { value: v, enumerable: true });
Object.defineProperty(Cluster, 'Cluster', { value: api.Cluster, enumerable: true });
Object.defineProperty(Cluster, 'default', { value: api.Cluster });

export = Cluster;
