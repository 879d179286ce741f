/**
 * Value parsers for milter.conf: durations, sizes, booleans, lists, listen specs, host:port, e-mail
 * addresses, address patterns and CIDRs. Each returns the value or what was expected, never throws.
 * Pure; imports only util/net-address, whose address parsers the runtime shares (policy imports the
 * pattern and CIDR parsers from here).
 */
import * as net from 'node:net';
import {
  isHostname, parseListenAddress, parseRelay as parseSharedRelay, parseStatusAddress, type ListenAddress, type Parsed,
} from '../util/net-address';

export { isHostname, type Parsed };

const ok = <T>(value: T): Parsed<T> => ({ ok: true, value });
const bad = <T>(expected: string): Parsed<T> => ({ ok: false, expected });

const DURATION_UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** `500ms`, `120s`, `2m`, `1h`, `1d`; a bare number is seconds; decimals allowed if whole ms. Result in ms. */
export function parseDuration(text: string): Parsed<number> {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)?$/.exec(text);
  const expected = 'a duration such as 500ms, 120s, 2m or 1h (bare number = seconds)';
  if (!m) return bad(expected);
  const ms = Number(m[1]) * DURATION_UNITS[m[2] ?? 's']!;
  if (!Number.isSafeInteger(Math.round(ms)) || Math.abs(ms - Math.round(ms)) > 1e-9) return bad(`${expected}, in whole milliseconds`);
  return ok(Math.round(ms));
}

const SIZE_UNITS: Record<string, number> = {
  b: 1, kb: 1000, mb: 1000 ** 2, gb: 1000 ** 3, kib: 1024, mib: 1024 ** 2, gib: 1024 ** 3,
};

/** `512KiB`, `50MiB`, `1GiB` (powers of 1024), `10MB` (powers of 1000), `100B` or a bare byte count. */
export function parseSize(text: string): Parsed<number> {
  const m = /^(\d+(?:\.\d+)?)([KMG]i?B|B)?$/i.exec(text);
  const expected = 'a size such as 512KiB, 50MiB, 1GiB, 10MB (bare number = bytes)';
  if (!m) return bad(expected);
  const n = Number(m[1]) * SIZE_UNITS[(m[2] ?? 'b').toLowerCase()]!;
  if (!Number.isSafeInteger(n)) return bad(`${expected}, in whole bytes`);
  return ok(n);
}

const TRUE_WORDS = new Set(['yes', 'true', 'on', '1']);
const FALSE_WORDS = new Set(['no', 'false', 'off', '0']);

export function parseBool(text: string): Parsed<boolean> {
  const t = text.toLowerCase();
  if (TRUE_WORDS.has(t)) return ok(true);
  if (FALSE_WORDS.has(t)) return ok(false);
  return bad('yes or no (also true/false, on/off, 1/0)');
}

/** Items separated by commas and/or whitespace (Postfix style); empty text = empty list. */
export function splitList(text: string): string[] {
  return text.split(/[\s,]+/).filter((s) => s !== '');
}

export function parseInteger(text: string): Parsed<number> {
  if (!/^\d+$/.test(text) || !Number.isSafeInteger(Number(text))) return bad('a whole number');
  return ok(Number(text));
}

/** `0660`, `660` or `0o660`. */
export function parseOctal(text: string): Parsed<number> {
  const m = /^(?:0o?)?([0-7]{1,4})$/.exec(text);
  if (!m) return bad('an octal mode such as 0660');
  return ok(parseInt(m[1]!, 8));
}

export function isIPv4(text: string): boolean {
  return /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/.test(text);
}

export function parseHostname(text: string): Parsed<string> {
  return isHostname(text) ? ok(text) : bad('a host name such as gw1.example.org');
}

/** Section and group names: letters, digits, `_`, `.`, `-`; starting with a letter or digit. */
export function parseName(text: string): Parsed<string> {
  return /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/.test(text) ? ok(text) : bad('a name of letters, digits, _ . -');
}

export function parseAbsolutePath(text: string): Parsed<string> {
  return text.startsWith('/') && !/[\0\r\n]/.test(text) ? ok(text) : bad('an absolute path');
}

/** A shared address parser's refusal as milter.conf reports it: `got "text" (why)`. */
function refused<T>(r: Parsed<T>, text: string): Parsed<T> {
  return r.ok ? r : { ok: false, expected: r.expected, got: `${JSON.stringify(text)}${r.why ? ` (${r.why})` : ''}` };
}

/** The milter listen address, Postfix or Sendmail style (the parser the milter server uses). */
export function parseListen(text: string): Parsed<ListenAddress> {
  return refused(parseListenAddress(text), text);
}

/** The status endpoint: a loopback `IP:PORT` or `[IPv6]:PORT` (the status server's parser), or `no`. */
export function parseStatusListen(text: string): Parsed<string> {
  if (text === 'no') return ok(text);
  const r = parseStatusAddress(text, { loopbackOnly: true });
  if (r.ok) return ok(text);
  return refused({ ...r, expected: `${r.expected}, or no` }, text);
}

/** The metrics listener: `IP:PORT` or `[IPv6]:PORT` on any address (metrics_allow guards it), or `no`. */
export function parseMetricsListen(text: string): Parsed<string> {
  if (text === 'no') return ok(text);
  const r = parseStatusAddress(text);
  if (r.ok) return ok(text);
  return refused({ ...r, expected: `${r.expected}, or no` }, text);
}

/** The intake relay: `host`, `host:port`, `[host-or-ip]`, `[ip]:port` (the forwarder's parser). */
export function parseRelay(text: string): Parsed<string> {
  const r = parseSharedRelay(text);
  return r.ok ? ok(text) : refused(r, text);
}

/** A header field name (RFC 5322 ftext). */
export function parseHeaderName(text: string): Parsed<string> {
  return /^[\x21-\x39\x3b-\x7e]+$/.test(text) ? ok(text) : bad('a header field name such as X-IronPort-RemoteIP');
}

const LOCAL_RE = /^[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*$/;

function isDomain(text: string): boolean {
  const lit = /^\[(.+)\]$/.exec(text);
  if (lit) return isIPv4(lit[1]!);
  return isHostname(text) && !text.endsWith('.');
}

/** An intake address `local@domain` (ASCII dot-atom local part; domain name or [IPv4]). */
export function parseEmailAddress(text: string): Parsed<string> {
  const at = text.lastIndexOf('@');
  if (at > 0 && at <= 64 && LOCAL_RE.test(text.slice(0, at)) && isDomain(text.slice(at + 1))) return ok(text);
  return bad('an e-mail address such as 33c48e-27xp9-05ecb4@beta.cmd.cisco.com');
}

/** A parsed address pattern (lower-case). */
export type AddressPattern =
  | { kind: 'exact'; local: string; domain: string }
  | { kind: 'domain'; domain: string }
  | { kind: 'subdomain'; domain: string }
  | { kind: 'local'; local: string };

/** `user@domain`, `@domain`, `@.domain` (subdomains only) or `user@` (any domain); case-insensitive. */
export function parseAddressPattern(text: string): Parsed<AddressPattern> {
  const expected = 'an address pattern: user@domain, @domain, @.domain or user@';
  const t = text.toLowerCase();
  const at = t.lastIndexOf('@');
  if (at < 0) return bad(expected);
  const local = t.slice(0, at);
  const domain = t.slice(at + 1);
  if (local !== '' && !LOCAL_RE.test(local)) return bad(expected);
  if (domain === '') return local === '' ? bad(expected) : ok({ kind: 'local', local });
  if (domain.startsWith('.')) {
    const d = domain.slice(1);
    return local === '' && isDomain(d) && !d.startsWith('[') ? ok({ kind: 'subdomain', domain: d }) : bad(expected);
  }
  if (!isDomain(domain)) return bad(expected);
  return local === '' ? ok({ kind: 'domain', domain }) : ok({ kind: 'exact', local, domain });
}

export interface Cidr {
  family: 4 | 6;
  /** Network bytes (4 or 16). */
  bytes: Uint8Array;
  prefix: number;
}

/** Bytes of an IPv4 or IPv6 literal (no brackets, no zone), or undefined. */
export function ipBytes(text: string): { family: 4 | 6; bytes: Uint8Array } | undefined {
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

/** `10.0.0.0/8`, `2001:db8::/32`; a bare address is a host network (/32, /128). Host bits must be zero. */
export function parseCidr(text: string): Parsed<Cidr> {
  const expected = 'a network such as 10.0.0.0/8 or 2001:db8::/32';
  const slash = text.indexOf('/');
  const addr = slash < 0 ? text : text.slice(0, slash);
  const ip = ipBytes(addr);
  if (!ip) return bad(expected);
  const max = ip.family === 4 ? 32 : 128;
  let prefix = max;
  if (slash >= 0) {
    const p = text.slice(slash + 1);
    if (!/^\d{1,3}$/.test(p) || Number(p) > max) return bad(expected);
    prefix = Number(p);
  }
  for (let bit = prefix; bit < max; bit++) {
    if ((ip.bytes[bit >> 3]! >> (7 - (bit & 7))) & 1) return bad(`${expected}, with host bits zero`);
  }
  return ok({ family: ip.family, bytes: ip.bytes, prefix });
}
