/**
 * Milter macros → the MTA-neutral facts of a captured message (queue id, listener, authenticated
 * user, client IP). Macro names (`i`, `{daemon_name}`, `{auth_authen}`, `{client_addr}`) stay here.
 * Imports message only.
 */
import * as net from 'node:net';
import type { CapturedMessage, ClientInfo } from '../message';

/** What the milter hands on: the neutral message, plus the macros for milter-level tests and tools. */
export type MilterMessage = CapturedMessage & { readonly macros: ReadonlyMap<string, string> };

/** Macro names arrive as `i` or `{i}`; both mean the same macro. */
export function macroKey(name: string): string {
  return name.length > 2 && name.startsWith('{') && name.endsWith('}') ? name.slice(1, -1) : name;
}

export function getMacro(macros: ReadonlyMap<string, string>, name: string): string | undefined {
  return macros.get(macroKey(name));
}

/** The client IP: the connect info, else `{client_addr}`; brackets and `IPv6:` removed, mapped IPv6 as IPv4. */
export function clientIpOf(client: ClientInfo | undefined, macros: ReadonlyMap<string, string>): string | undefined {
  const candidates = [
    client && (client.family === 'inet' || client.family === 'inet6') ? client.address : undefined,
    getMacro(macros, 'client_addr'),
  ];
  for (const c of candidates) {
    if (c === undefined) continue;
    const t = c.trim().replace(/^\[(.*)\]$/, '$1').replace(/^ipv6:/i, '');
    if (net.isIP(t) === 0) continue;
    const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(t);
    return mapped ? mapped[1]! : t.toLowerCase();
  }
  return undefined;
}

/** The neutral facts the macros carry. Empty values count as absent. */
export function mtaFacts(
  macros: ReadonlyMap<string, string>, client: ClientInfo | undefined,
): Pick<CapturedMessage, 'queueId' | 'listener' | 'authenticatedUser' | 'clientIp'> {
  const present = (name: string) => {
    const v = getMacro(macros, name)?.trim();
    return v === undefined || v === '' ? undefined : v;
  };
  const facts: Pick<CapturedMessage, 'queueId' | 'listener' | 'authenticatedUser' | 'clientIp'> = { queueId: getMacro(macros, 'i') ?? '' };
  const listener = present('daemon_name');
  const user = present('auth_authen');
  const ip = clientIpOf(client, macros);
  if (listener !== undefined) facts.listener = listener;
  if (user !== undefined) facts.authenticatedUser = user;
  if (ip !== undefined) facts.clientIp = ip;
  return facts;
}
