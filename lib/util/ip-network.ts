/**
 * The one parser for IP literals and networks (CIDR), shared by milter.conf (`internal_networks`,
 * `metrics_allow`), policy (the client's address) and the metrics listener (the peer's address), and
 * the membership test they all use. IPv4-mapped IPv6 (`::ffff:a.b.c.d`) counts as IPv4 on both sides.
 * Pure, never throws, never resolves a name; imports node:net and ./net-address (the Parsed type) only.
 */
import * as net from 'node:net';
import type { Parsed } from './net-address';

export interface IpAddress {
  family: 4 | 6;
  /** 4 or 16 bytes. */
  bytes: Uint8Array;
}

/** A network as written: network bytes and prefix length, host bits zero. */
export interface Cidr extends IpAddress {
  prefix: number;
}

/**
 * A network ready to match: `text` as written (lower-case; what logs and `tdc-milter config` show),
 * and a mapped IPv6 network (`::ffff:0:0/96` or longer) already turned into its IPv4 network.
 */
export interface Network extends Cidr {
  text: string;
}

export function isIPv4(text: string): boolean {
  return /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/.test(text);
}

/** Bytes of an IPv4 or IPv6 literal (no brackets, no zone), or undefined. */
export function ipBytes(text: string): IpAddress | undefined {
  if (isIPv4(text)) return { family: 4, bytes: Uint8Array.from(text.split('.').map(Number)) };
  if (!net.isIPv6(text) || text.includes('%')) return undefined;
  // Turn a dotted IPv4 tail (`::ffff:1.2.3.4`) into two hex groups first.
  const s = text.replace(/(\d+)\.(\d+)\.(\d+)\.(\d+)$/, (_m, a: string, b: string, c: string, d: string) =>
    `${((Number(a) << 8) | Number(b)).toString(16)}:${((Number(c) << 8) | Number(d)).toString(16)}`);
  const halves = s.split('::');
  if (halves.length > 2) return undefined;
  const head = halves[0] === '' ? [] : halves[0]!.split(':');
  const tail = halves.length === 2 && halves[1] !== '' ? halves[1]!.split(':') : [];
  const fill = halves.length === 2 ? 8 - head.length - tail.length : 0;
  if (fill < 0) return undefined;
  const groups = [...head, ...Array<string>(fill).fill('0'), ...tail];
  if (groups.length !== 8 || groups.some((g) => !/^[0-9a-fA-F]{1,4}$/.test(g))) return undefined;
  const bytes = new Uint8Array(16);
  groups.forEach((g, i) => {
    const n = parseInt(g, 16);
    bytes[i * 2] = n >> 8;
    bytes[i * 2 + 1] = n & 0xff;
  });
  return { family: 6, bytes };
}

const MAPPED_PREFIX = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff];

function isMapped(bytes: Uint8Array): boolean {
  return bytes.length === 16 && MAPPED_PREFIX.every((b, i) => bytes[i] === b);
}

/** An address as MTAs and sockets write it (`IPv6:` prefix, brackets and zone index tolerated); mapped IPv6 → IPv4. */
export function parseIp(text: string): IpAddress | undefined {
  let t = text.trim().replace(/^\[(.*)\]$/, '$1');
  if (/^ipv6:/i.test(t)) t = t.slice(5);
  t = t.replace(/%.*$/, '');
  const ip = ipBytes(t);
  if (!ip) return undefined;
  if (ip.family === 6 && isMapped(ip.bytes)) return { family: 4, bytes: ip.bytes.slice(12) };
  return ip;
}

export const CIDR_EXPECTED = 'a network such as 10.0.0.0/8 or 2001:db8::/32';

/** `10.0.0.0/8`, `2001:db8::/32`; a bare address is a host network (/32, /128). Host bits must be zero. */
export function parseCidr(text: string): Parsed<Cidr> {
  const bad = (expected: string): Parsed<Cidr> => ({ ok: false, expected });
  const slash = text.indexOf('/');
  const ip = ipBytes(slash < 0 ? text : text.slice(0, slash));
  if (!ip) return bad(CIDR_EXPECTED);
  const max = ip.family === 4 ? 32 : 128;
  let prefix = max;
  if (slash >= 0) {
    const p = text.slice(slash + 1);
    if (!/^\d{1,3}$/.test(p) || Number(p) > max) return bad(CIDR_EXPECTED);
    prefix = Number(p);
  }
  for (let bit = prefix; bit < max; bit++) {
    if ((ip.bytes[bit >> 3]! >> (7 - (bit & 7))) & 1) return bad(`${CIDR_EXPECTED}, with host bits zero`);
  }
  return { ok: true, value: { family: ip.family, bytes: ip.bytes, prefix } };
}

/** parseCidr, then the form that matches: the text kept (lower-case), a mapped IPv6 network made IPv4. */
export function parseNetwork(text: string): Parsed<Network> {
  const r = parseCidr(text);
  if (!r.ok) return r;
  const c = r.value;
  const lower = text.toLowerCase();
  if (c.family === 6 && c.prefix >= 96 && isMapped(c.bytes)) {
    return { ok: true, value: { text: lower, family: 4, bytes: c.bytes.slice(12), prefix: c.prefix - 96 } };
  }
  return { ok: true, value: { text: lower, ...c } };
}

export function inNetwork(ip: IpAddress, network: Cidr): boolean {
  if (ip.family !== network.family) return false;
  const full = network.prefix >> 3;
  for (let i = 0; i < full; i++) if (ip.bytes[i] !== network.bytes[i]) return false;
  const rest = network.prefix & 7;
  if (rest === 0) return true;
  const mask = (0xff << (8 - rest)) & 0xff;
  return (ip.bytes[full]! & mask) === (network.bytes[full]! & mask);
}

/** The first network of `list` that holds `ip`. */
export function findNetwork<N extends Cidr>(list: readonly N[], ip: IpAddress): N | undefined {
  return list.find((n) => inNetwork(ip, n));
}

/** Networks back as their text, comma-separated (what milter.conf and the log lines show). */
export function formatNetworks(list: readonly Network[]): string {
  return list.map((n) => n.text).join(', ');
}
