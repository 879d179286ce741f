/**
 * Value parsers for milter.conf: durations, sizes, booleans, lists, listen specs, host:port, e-mail
 * addresses, address patterns and CIDRs. Each returns the value or what was expected, never throws.
 * Pure; imports only util/net-address and util/ip-network, whose parsers the runtime shares (the CIDR
 * parser lives there because the metrics listener in status uses its Network too).
 */
import {
  isHostname, parseListenAddress, parseRelay as parseSharedRelay, parseStatusAddress, type ListenAddress, type Parsed,
  type RelaySpec,
} from '../util/net-address';
import { isIPv4 } from '../util/ip-network';

export { isHostname, type Parsed };
export { isIPv4, ipBytes, parseCidr, parseNetwork, type Cidr, type Network } from '../util/ip-network';

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

/** The intake relay: `host`, `host:port`, `[host-or-ip]`, `[ip]:port`, parsed into the RelaySpec the forwarder routes by. */
export function parseRelay(text: string): Parsed<RelaySpec> {
  return refused(parseSharedRelay(text), text);
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

/** A pattern back as its (lower-case) text: the inverse of parseAddressPattern. */
export function formatAddressPattern(p: AddressPattern): string {
  switch (p.kind) {
    case 'exact': return `${p.local}@${p.domain}`;
    case 'domain': return `@${p.domain}`;
    case 'subdomain': return `@.${p.domain}`;
    case 'local': return `${p.local}@`;
  }
}
