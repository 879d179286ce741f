/**
 * Incoming or not: outgoing when the MTA listener (Postfix's daemon name) is an outgoing one, when the
 * client authenticated and that counts as outgoing, or when the client IP is internal.
 * Imports config (types, values) and message only.
 */
import type { Cidr } from '../config/values';
import type { Config } from '../config';
import type { CapturedMessage } from '../message';
import { clientIp, compileCidr, inCidr } from './network';

type Direction = Config['direction'];

interface Compiled {
  daemonNames: Set<string>;
  networks: { text: string; cidr: Cidr }[];
}

// Config objects are frozen, so compiled forms can be cached per object.
const cache = new WeakMap<Direction, Compiled>();

function compile(d: Direction): Compiled {
  let c = cache.get(d);
  if (!c) {
    c = {
      daemonNames: new Set(d.outgoingDaemonNames.map((n) => n.toLowerCase())),
      networks: d.internalNetworks.flatMap((text) => {
        const cidr = compileCidr(text);
        return cidr ? [{ text, cidr }] : [];
      }),
    };
    cache.set(d, c);
  }
  return c;
}

/**
 * Daemon names compare case-insensitively (Postfix compares nothing itself; admins write
 * ORIGINATING and originating alike). The reason is meant for a log line.
 */
export function classifyDirection(msg: CapturedMessage, d: Direction): { incoming: boolean; reason: string } {
  const c = compile(d);
  const daemon = msg.listener;
  if (daemon !== undefined && c.daemonNames.has(daemon.trim().toLowerCase())) {
    return { incoming: false, reason: `daemon_name ${daemon.trim()} is an outgoing listener` };
  }
  const auth = msg.authenticatedUser?.trim() ?? '';
  if (d.authenticatedIsOutgoing && auth !== '') {
    return { incoming: false, reason: `client authenticated as ${auth}` };
  }
  const client = clientIp(msg);
  if (client) {
    const net = c.networks.find((n) => inCidr(client.ip, n.cidr));
    if (net) return { incoming: false, reason: `client ${client.text} is in internal network ${net.text}` };
  }
  const facts = [
    client ? `client ${client.text}` : 'client address unknown',
    `daemon_name ${daemon?.trim() || '(none)'}`,
    auth === '' ? 'not authenticated' : `authenticated as ${auth} (not counted as outgoing)`,
  ];
  return { incoming: true, reason: facts.join(', ') };
}
