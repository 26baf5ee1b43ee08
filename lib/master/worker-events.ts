import type { EventEmitter } from 'node:events';
import type { RecycleReason } from '../shared/ipc';
import type { MasterStatus } from '../shared/protocol';
import { addDurations } from '../shared/durations';
import type { Supervisor, WorkerInfo } from './supervisor';

/**
 * The supervisor's news about workers, as the Cluster's events (lib/shared/events.ts), and
 * what a worker that died had served, kept in `retired` for the master's status.
 */
export function forwardWorkerEvents(sup: Supervisor, c: EventEmitter, retired: MasterStatus['retired']): void {
  sup.on('forked', (w: WorkerInfo) => c.emit('forked', w.pid));
  sup.on('spare', (pid: number) => c.emit('spare', pid));
  sup.on('listening', (w: WorkerInfo, address: unknown) => c.emit('listening', w.pid, address));
  sup.on('died', (w: WorkerInfo, code: number | null, signal: string | null) => {
    retired.connections += w.stats.connections;
    retired.requests += w.stats.requests;
    retired.durations = addDurations(retired.durations, w.stats.durations);
    c.emit('died', w.pid, code, signal);
  });
  sup.on('warning', (message: string) => c.emit('warning', message));
  sup.on('recycled', (old: WorkerInfo, neo: WorkerInfo, reason: RecycleReason) =>
    c.emit('recycled', old.pid, neo.pid, reason),
  );
}
