// sticky: 'ip': what it needs. The kernel does the work: a classic BPF program
// on the reuseport group (native/cluster2.cc sticky) picks the slot from the
// client's source address, and a slot keeps its socket across recycles,
// respawns and reloads (lib/listen/reuseport.ts). This file refuses, before any
// process is forked, the setups where that program cannot run (lib/shared/options.ts
// refuses options that contradict it).

import type { ActiveStrategy } from '../shared/protocol';
import type { System } from '../shared/system';
import { STICKY_NEEDS, type Resolved } from '../shared/options';

/**
 * At start, once the strategy is chosen: why sticky cannot run here, as one
 * line for stderr, or undefined when it can (or is off).
 */
export function stickyProblem(
  o: Pick<Resolved, 'sticky'>,
  strategy: ActiveStrategy,
  addon: { sys: Pick<System, 'implementation' | 'can'>; loadError: Error | null },
  platform: string = process.platform,
): string | undefined {
  if (!o.sticky) return undefined;
  if (strategy === 'reuseport' && addon.sys.can.sticky) return undefined;
  let why: string;
  if (platform !== 'linux') why = `this is ${platform}`;
  else if (addon.sys.implementation !== 'native')
    why = `the native addon is not in use (${addon.loadError ? addon.loadError.message : 'CLUSTER2_NATIVE=0'})`;
  else if (!addon.sys.can.sticky) why = 'the native addon in use has no sticky program (an older build: rebuild it)';
  else why = `the strategy in use would be "${strategy}"`;
  return `cluster2: option "sticky" is "${o.sticky}"; it needs ${STICKY_NEEDS}, and ${why}`;
}
