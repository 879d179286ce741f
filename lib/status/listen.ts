/**
 * The `status_listen` address: `127.0.0.1:8895`, `[::1]:8895`, `localhost:8895` (taken as 127.0.0.1,
 * never resolved), port 0 allowed; and whether a host is loopback. Shared by the server and the CLI
 * client. Imports only util; `no` (endpoint off) is the caller's business.
 */
import * as net from 'node:net';
import { TdcError } from '../util/errors';

export interface StatusAddress {
  /** An IP literal, without brackets. */
  host: string;
  port: number;
}

function bad(text: string, why: string): TdcError {
  return new TdcError('status_listen', `status_listen: expected HOST:PORT with an IP address (e.g. 127.0.0.1:8895 or [::1]:8895), got ${JSON.stringify(text)}: ${why}`);
}

/** Parse `HOST:PORT`; an `inet:`/`inet6:` prefix is tolerated. Throws TdcError('status_listen'). */
export function parseStatusListen(text: string): StatusAddress {
  let s = text.trim();
  const prefix = /^inet6?:/i.exec(s);
  if (prefix) s = s.slice(prefix[0].length);
  let host: string;
  let portText: string;
  if (s.startsWith('[')) {
    const close = s.indexOf(']');
    if (close < 0 || s[close + 1] !== ':') throw bad(text, 'a bracketed address needs the form [ADDR]:PORT');
    host = s.slice(1, close);
    portText = s.slice(close + 2);
    if (net.isIP(host) === 0) throw bad(text, `${host} is not an IP address`);
  } else {
    const colon = s.lastIndexOf(':');
    if (colon < 0) throw bad(text, 'no port');
    host = s.slice(0, colon);
    portText = s.slice(colon + 1);
    if (host.toLowerCase() === 'localhost') host = '127.0.0.1';
    if (net.isIPv4(host) === false) {
      throw bad(text, net.isIPv6(host) ? 'put an IPv6 address in brackets' : `${host || '(empty)'} is not an IP address`);
    }
  }
  if (!/^\d{1,5}$/.test(portText) || Number(portText) > 65535) throw bad(text, `port ${portText || '(empty)'} is not 0-65535`);
  return { host, port: Number(portText) };
}

/** `127.0.0.1:8895` or `[::1]:8895`: the form parseStatusListen reads back. */
export function formatStatusAddress(a: StatusAddress): string {
  return net.isIPv6(a.host) ? `[${a.host}]:${a.port}` : `${a.host}:${a.port}`;
}

const LOOPBACK = new net.BlockList();
LOOPBACK.addSubnet('127.0.0.0', 8, 'ipv4');
LOOPBACK.addAddress('::1', 'ipv6'); // BlockList also matches IPv4-mapped ::ffff:127.x.x.x against the IPv4 rule

/** 127.0.0.0/8, ::1 and IPv4-mapped 127.x.x.x; false for anything that is not an IP literal. */
export function isLoopback(host: string): boolean {
  if (net.isIPv4(host)) return LOOPBACK.check(host, 'ipv4');
  if (net.isIPv6(host)) return LOOPBACK.check(host, 'ipv6');
  return false;
}
