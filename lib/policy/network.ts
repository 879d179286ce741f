/**
 * Client IP addresses and CIDR membership for the direction test: IPv4 and IPv6, with IPv4-mapped
 * IPv6 (`::ffff:a.b.c.d`) treated as the IPv4 address on both sides. Imports config (values) and message only.
 */
import type { CapturedMessage } from '../message';
import { ipBytes, parseCidr, type Cidr } from '../config';

export interface Ip {
  family: 4 | 6;
  bytes: Uint8Array;
}

const MAPPED_PREFIX = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff];

function isMapped(bytes: Uint8Array): boolean {
  return bytes.length === 16 && MAPPED_PREFIX.every((b, i) => bytes[i] === b);
}

/** Parse an address as MTAs write it (`IPv6:` prefix, brackets and zone index tolerated); mapped v6 → v4. */
export function parseIp(text: string): Ip | undefined {
  let t = text.trim().replace(/^\[(.*)\]$/, '$1');
  if (/^ipv6:/i.test(t)) t = t.slice(5);
  t = t.replace(/%.*$/, '');
  const ip = ipBytes(t);
  if (!ip) return undefined;
  if (ip.family === 6 && isMapped(ip.bytes)) return { family: 4, bytes: ip.bytes.slice(12) };
  return ip;
}

/** The client IP the MTA reported, parsed; undefined when unknown or not an IP address. */
export function clientIp(msg: Pick<CapturedMessage, 'clientIp'>): { text: string; ip: Ip } | undefined {
  const text = msg.clientIp;
  if (text === undefined || text === '') return undefined;
  const ip = parseIp(text);
  return ip ? { text, ip } : undefined;
}

/** A CIDR normalised so that `::ffff:0:0/96`-and-longer networks are IPv4 networks. */
export function compileCidr(text: string): Cidr | undefined {
  const r = parseCidr(text);
  if (!r.ok) return undefined;
  const c = r.value;
  if (c.family === 6 && c.prefix >= 96 && isMapped(c.bytes)) return { family: 4, bytes: c.bytes.slice(12), prefix: c.prefix - 96 };
  return c;
}

export function inCidr(ip: Ip, cidr: Cidr): boolean {
  if (ip.family !== cidr.family) return false;
  const full = cidr.prefix >> 3;
  for (let i = 0; i < full; i++) if (ip.bytes[i] !== cidr.bytes[i]) return false;
  const rest = cidr.prefix & 7;
  if (rest === 0) return true;
  const mask = (0xff << (8 - rest)) & 0xff;
  return (ip.bytes[full]! & mask) === (cidr.bytes[full]! & mask);
}
