import type { EventEmitter } from 'node:events';
import type { Resolved } from '../shared/options';
import { sys } from '../shared/native';
import type { Listener } from '../listen/strategy';
import type { Service } from '../service/service';
import type { KeeperRef } from './keeper';
import type { Supervisor } from './supervisor';
import { Upgrader, type UpgradeResult } from './upgrade';

/** What the upgrader of a master needs from it. */
export interface UpgradingMaster {
  o: Resolved;
  listener: Listener;
  sup: Supervisor;
  service: Service;
  /** The process that keeps the service (this one, for the first upgrade). */
  keeper: () => KeeperRef;
  /** The new master serves (said to systemd). */
  upgraded: (r: UpgradeResult) => void;
  /** The Cluster: its events. */
  c: EventEmitter;
}

/**
 * The upgrader of a master (lib/master/upgrade.ts): what it hands over (the sockets, the
 * worker count when scaled, ECV), when it refuses (no socket to hand over), and its events.
 */
export function upgraderFor(m: UpgradingMaster): Upgrader {
  const { o, listener, sup, service, c } = m;
  const master = {
    handoff: () => {
      const fds = service.listeningFds();
      return {
        app: listener.handoff?.() ?? [],
        reusePort: listener.name === 'reuseport',
        port: listener.port,
        monitor: fds.monitor,
        monPort: o.monPort || undefined,
        metrics: fds.metrics,
        metricsPort: o.metrics?.port || undefined,
        size: sup.size === o.noWorkers ? undefined : sup.size,
        ecv: { enabled: service.ecv.enabled, since: service.ecv.since },
      };
    },
    refusal: () => {
      // round-robin or shared without the addon: node:cluster bound the port, there is no socket to hand over.
      if (listener.handoff?.().length === 0)
        return (
          `strategy ${listener.name} hands its listening socket over only with the native addon ` +
          `(${sys.implementation} in use)`
        );
      return null;
    },
    keeper: m.keeper,
  };
  return new Upgrader(master, o.listenTimeout + 30_000, {
    upgrading: (pid, node) => c.emit('upgrading', pid, node),
    upgraded: (r) => {
      m.upgraded(r);
      c.emit('upgraded', r.from, r.to);
    },
    failed: (message) => c.emit('upgradeFailed', message),
  });
}
