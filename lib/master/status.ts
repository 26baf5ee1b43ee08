import type { MasterState, MasterStatus } from '../shared/protocol';
import { sys } from '../shared/native';
import type { ActiveStrategy } from '../listen/strategy';
import type { Service } from '../service/service';
import type { Supervisor } from './supervisor';

/** What a master's status is made of. */
export interface StatusSource {
  state: MasterState | 'degraded';
  strategy: ActiveStrategy | undefined;
  port: number;
  sup: Supervisor;
  service: Service;
  retired: MasterStatus['retired'];
}

/** The master's status, as `cluster2 status` and the monitor show it. */
export function statusOf(m: StatusSource): MasterStatus {
  const { sup, service } = m;
  const workers = [...sup.workers.values()];
  return {
    pid: process.pid,
    state: m.state,
    strategy: m.strategy,
    implementation: sys.implementation,
    port: m.port,
    started: service.started,
    size: sup.size,
    restarts: sup.restarts,
    recycles: { ...sup.recycles },
    exits: sup.exits,
    ecv: { enabled: service.ecv.enabled, since: service.ecv.since },
    retired: { ...m.retired },
    workers: workers.map((w) => ({
      pid: w.pid,
      slot: w.slot,
      state: w.state,
      started: w.started,
      listened: w.listened,
      restarts: sup.slotRestarts[w.slot] ?? 0,
      ...w.stats,
    })),
    spare: sup.spares.status(),
    events: service.eventLog(),
  };
}
