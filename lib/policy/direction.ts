/**
 * Incoming or not: outgoing when the MTA listener (Postfix's daemon name) is an outgoing one, when the
 * client authenticated and that counts as outgoing, or when the client IP is internal.
 * internal_networks come parsed in the Config. Imports config (types), message and util only.
 */
import type { Config } from '../config';
import type { CapturedMessage } from '../message';
import { findNetwork } from '../util/ip-network';
import { clientIp } from './network';

type Direction = Config['direction'];

// Config objects are frozen, so the lower-cased daemon names can be cached per object.
const cache = new WeakMap<Direction, Set<string>>();

function daemonNames(d: Direction): Set<string> {
  let names = cache.get(d);
  if (!names) {
    names = new Set(d.outgoingDaemonNames.map((n) => n.toLowerCase()));
    cache.set(d, names);
  }
  return names;
}

/**
 * Daemon names compare case-insensitively (Postfix compares nothing itself; admins write
 * ORIGINATING and originating alike). The reason is meant for a log line.
 */
export function classifyDirection(msg: CapturedMessage, d: Direction): { incoming: boolean; reason: string } {
  const daemon = msg.listener;
  if (daemon !== undefined && daemonNames(d).has(daemon.trim().toLowerCase())) {
    return { incoming: false, reason: `daemon_name ${daemon.trim()} is an outgoing listener` };
  }
  const auth = msg.authenticatedUser?.trim() ?? '';
  if (d.authenticatedIsOutgoing && auth !== '') {
    return { incoming: false, reason: `client authenticated as ${auth}` };
  }
  const client = clientIp(msg);
  if (client) {
    const net = findNetwork(d.internalNetworks, client.ip);
    if (net) return { incoming: false, reason: `client ${client.text} is in internal network ${net.text}` };
  }
  const facts = [
    client ? `client ${client.text}` : 'client address unknown',
    `daemon_name ${daemon?.trim() || '(none)'}`,
    auth === '' ? 'not authenticated' : `authenticated as ${auth} (not counted as outgoing)`,
  ];
  return { incoming: true, reason: facts.join(', ') };
}
