import type { Resolved } from '../shared/options';
import { EXIT_CONFIG } from '../shared/exit-codes';
import { StartError } from '../shared/start-error';
import { loadError, sys } from '../shared/native';
import { inheritedChoice, oneSocket, serviceSockets, takeInherited, type Inherited } from '../listen/inherited';
import { NodeClusterListener } from '../listen/node-cluster';
import { pickPort } from '../listen/pick-port';
import { NodeReusePortListener, ReusePortListener } from '../listen/reuseport';
import { chooseStrategy, type ActiveStrategy, type Listener } from '../listen/strategy';
import { assertPortsFree, resolveBindHost } from '../service/port-probe';
import { stickyProblem } from './sticky';
import { UpgradeChild } from './upgrade';

/** What a master starts from: the sockets it inherited (an upgrade, systemd), and the listener it opened. */
export interface Opened {
  inh: Inherited | undefined;
  /** This master was started by an upgrade: it tells the old one when it serves. */
  upgrading: UpgradeChild | undefined;
  /** The monitor's and metrics server's inherited sockets. */
  fds: ReturnType<typeof serviceSockets>;
  listener: Listener;
}

/**
 * The strategy (lib/listen/strategy.ts, or what the sockets handed over say), the checks that
 * fail a start before anything is forked (sticky needs, a busy port: exit 69), and the listener.
 */
export async function openListener(o: Resolved): Promise<Opened> {
  const inh = takeInherited();
  const upgrading = inh?.source === 'upgrade' ? new UpgradeChild() : undefined;
  const choice = inheritedChoice(chooseStrategy(o), inh);
  const sticky = stickyProblem(o, choice.name, { sys, loadError });
  if (sticky) throw new StartError(sticky, EXIT_CONFIG);
  if (choice.note) process.stderr.write(`${choice.note}\n`);
  const host = await resolveBindHost(o.host);
  const fds = serviceSockets(o, inh);
  // An upgrade of a reuseport-node master hands over no socket: the new workers join the old ones' group.
  await assertPortsFree(o, host, {
    app: !!inh && (inh.app.length > 0 || upgrading !== undefined),
    mon: fds.monitor !== undefined,
  });
  return { inh, upgrading, fds, listener: await createListener(o, choice.name, host, inh) };
}

async function createListener(
  o: Resolved,
  name: Exclude<ActiveStrategy, 'single'>,
  host: string,
  inh?: Inherited,
): Promise<Listener> {
  if (name === 'reuseport')
    return new ReusePortListener(host, o.port, o.sticky === 'ip').adopt(inh?.app ?? []).open(inh?.size ?? o.noWorkers);
  if (name === 'reuseport-node') return new NodeReusePortListener(inh?.port || o.port || (await pickPort(host)));
  // The master owns the listening socket when it can (so an upgrade can hand it over).
  const socket = oneSocket(inh) ?? sys.listen(host, o.port, 511, false);
  const port =
    (socket !== undefined ? sys.localPort(socket) : undefined) || inh?.port || o.port || (await pickPort(host));
  return new NodeClusterListener(name, port, socket);
}
