// require('cluster2') is the Cluster constructor itself (as the original was),
// with every named export on it too: require('cluster2').Cluster, .EXIT_PORT_BUSY ...
import * as api from './index';

const Cluster = api.Cluster as typeof api.Cluster & typeof api & { default: typeof api.Cluster };
// Descriptors, not values: `implementation` stays a lazy getter.
for (const [k, d] of Object.entries(Object.getOwnPropertyDescriptors(api)))
  if (k !== 'Cluster') Object.defineProperty(Cluster, k, d);
Object.defineProperty(Cluster, 'Cluster', { value: api.Cluster, enumerable: true });
Object.defineProperty(Cluster, 'default', { value: api.Cluster });

// Every type (ClusterOptions, MasterStatus, ClusterEvents ...) on the same name:
// `const c: Cluster = ...`, `Cluster.MasterStatus`, `import { type MasterStatus } from 'cluster2'`.
// A namespace has no `export *`: test/entry-points.test.ts checks that this list has every type of index.ts.
// eslint-disable-next-line @typescript-eslint/no-namespace
declare namespace Cluster {
  export type Cluster = api.Cluster;
  export type ClusterOptions = api.ClusterOptions;
  export type EcvOptions = api.EcvOptions;
  export type MetricsOptions = api.MetricsOptions;
  export type Strategy = api.Strategy;
  export type ResolvedOptions = api.ResolvedOptions;
  export type ResolvedEcv = api.ResolvedEcv;
  export type ClusterEvent = api.ClusterEvent;
  export type ClusterEvents = api.ClusterEvents;
  export type MasterStatus = api.MasterStatus;
  export type Role = api.Role;
  export type RecycleReason = api.RecycleReason;
  export type DrainReason = api.DrainReason;
  export type DrainHandler = api.DrainHandler;
  export type DrainInfo = api.DrainInfo;
  export type StartError = api.StartError;
  export type AppServer = api.AppServer;
  export type ListenCallback = api.ListenCallback;
}
type Cluster = api.Cluster;

export = Cluster;
