// require('cluster2') is the Cluster constructor itself (as the original was),
// with every named export on it too: require('cluster2').Cluster, .EXIT_PORT_BUSY ...
import * as api from './index';

const Cluster = api.Cluster as typeof api.Cluster & typeof api & { default: typeof api.Cluster };
// Descriptors, not values: `implementation` stays a lazy getter.
for (const [k, d] of Object.entries(Object.getOwnPropertyDescriptors(api))) if (k !== 'Cluster') Object.defineProperty(Cluster, k, d);
Object.defineProperty(Cluster, 'Cluster', { value: api.Cluster, enumerable: true });
Object.defineProperty(Cluster, 'default', { value: api.Cluster });

export = Cluster;
