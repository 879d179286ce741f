/**
 * The one parser per kind of network address, shared by milter.conf and the runtime: the milter
 * listen address (Postfix and Sendmail forms), the status endpoint address (loopback IP literal) and
 * the intake relay. Each returns the parsed value or what was expected and why; never throws, never
 * resolves a name. Pure; imports node:net only (no project module).
 */
import * as net from 'node:net';

/** A value, or what was expected (`why` says what was wrong; `got`, for lists, replaces the quoted text). */
export type Parsed<T> = { ok: true; value: T } | { ok: false; expected: string; why?: string; got?: string };

const ok = <T>(value: T): Parsed<T> => ({ ok: true, value });

export type ListenAddress =
  | { kind: 'inet'; host: string; port: number }
  | { kind: 'inet6'; host: string; port: number }
  | { kind: 'unix'; path: string };

export const LISTEN_FORMS = 'inet:IP:PORT, inet:PORT@IP, inet6:[IPv6]:PORT, inet6:PORT@IPv6, unix:/path or local:/path';

function port(raw: string): number | string {
  if (!/^\d{1,5}$/.test(raw)) return `port "${raw}" is not a number`;
  const n = Number(raw);
  return n > 65535 ? `port ${n} is above 65535` : n;
}

/** `[ADDR]:PORT` → its parts (unchecked), or undefined when the form is wrong. */
function splitBracketed(text: string): { host: string; portText: string } | undefined {
  const close = text.indexOf(']');
  if (close < 0 || text[close + 1] !== ':') return undefined;
  return { host: text.slice(1, close), portText: text.slice(close + 2) };
}

/**
 * `inet:127.0.0.1:8894` (Postfix), `inet:8894@127.0.0.1` (Sendmail), `inet6:[::1]:8894`, `inet6:8894@::1`,
 * `unix:/path`, `local:/path`. `localhost` means 127.0.0.1 (inet) and is never resolved; any other host
 * name is refused: the daemon binds only what it can bind without asking DNS. Port 0 is allowed.
 */
export function parseListenAddress(text: string): Parsed<ListenAddress> {
  const no = (why: string): Parsed<ListenAddress> => ({ ok: false, expected: LISTEN_FORMS, why });
  const colon = text.indexOf(':');
  if (colon <= 0) return no('no transport prefix');
  const transport = text.slice(0, colon).toLowerCase();
  const rest = text.slice(colon + 1);
  switch (transport) {
    case 'unix':
    case 'local':
      if (rest === '') return no('empty socket path');
      if (!rest.startsWith('/')) return no('the socket path must be absolute');
      if (/[\0\r\n]/.test(rest)) return no('a control character in the socket path');
      return ok({ kind: 'unix', path: rest });
    case 'inet': {
      const at = rest.indexOf('@');
      const last = rest.lastIndexOf(':');
      if (at < 0 && last < 0) return no('no port');
      let host = at >= 0 ? rest.slice(at + 1) : rest.slice(0, last);
      const p = port(at >= 0 ? rest.slice(0, at) : rest.slice(last + 1));
      if (host.startsWith('[') || host.includes(':')) return no('an IPv6 address needs inet6:[ADDR]:PORT');
      if (host === '') return no('empty host');
      if (host.toLowerCase() === 'localhost') host = '127.0.0.1';
      if (!net.isIPv4(host)) return no(`"${host}" is not an IPv4 address (host names are not resolved; use an IP address)`);
      return typeof p === 'number' ? ok({ kind: 'inet', host, port: p }) : no(p);
    }
    case 'inet6': {
      let host: string;
      let portText: string;
      if (rest.startsWith('[')) {
        const b = splitBracketed(rest);
        if (b === undefined) return no('expected [ADDR]:PORT');
        ({ host, portText } = b);
      } else if (rest.includes('@')) {
        const at = rest.indexOf('@');
        portText = rest.slice(0, at);
        host = rest.slice(at + 1).replace(/^\[(.*)\]$/, '$1');
      } else {
        return no('put the IPv6 address in brackets: inet6:[ADDR]:PORT');
      }
      if (!net.isIPv6(host)) return no(`"${host}" is not an IPv6 address`);
      const p = port(portText);
      return typeof p === 'number' ? ok({ kind: 'inet6', host, port: p }) : no(p);
    }
    case 'tcp':
      return no('the TCP transport is called "inet"');
    default:
      return no(`unknown transport "${text.slice(0, colon)}"`);
  }
}

/** The Postfix form, which parseListenAddress reads back. */
export function formatListenAddress(a: ListenAddress): string {
  switch (a.kind) {
    case 'inet': return `inet:${a.host}:${a.port}`;
    case 'inet6': return `inet6:[${a.host}]:${a.port}`;
    case 'unix': return `unix:${a.path}`;
  }
}

/** The status endpoint's address: an IP literal (no brackets) and a port. */
export interface StatusAddress {
  host: string;
  port: number;
}

export const STATUS_FORMS = 'a loopback IP:PORT such as 127.0.0.1:8895 or [::1]:8895';

const LOOPBACK = new net.BlockList();
LOOPBACK.addSubnet('127.0.0.0', 8, 'ipv4');
LOOPBACK.addAddress('::1', 'ipv6'); // BlockList also matches IPv4-mapped ::ffff:127.x.x.x against the IPv4 rule

/** 127.0.0.0/8, ::1 and IPv4-mapped 127.x.x.x; false for anything that is not an IP literal. */
export function isLoopback(host: string): boolean {
  if (net.isIPv4(host)) return LOOPBACK.check(host, 'ipv4');
  if (net.isIPv6(host)) return LOOPBACK.check(host, 'ipv6');
  return false;
}

/**
 * `127.0.0.1:8895`, `[::1]:8895`, `localhost:8895` (taken as 127.0.0.1, never resolved); an `inet:` or
 * `inet6:` prefix is tolerated; port 0 allowed. With `loopbackOnly` (milter.conf) any other address is
 * refused: the endpoint has no authentication.
 */
export function parseStatusAddress(text: string, opts: { loopbackOnly?: boolean } = {}): Parsed<StatusAddress> {
  const no = (why: string): Parsed<StatusAddress> => ({ ok: false, expected: STATUS_FORMS, why });
  let s = text.trim();
  const prefix = /^inet6?:/i.exec(s);
  if (prefix) s = s.slice(prefix[0].length);
  let host: string;
  let portText: string;
  if (s.startsWith('[')) {
    const b = splitBracketed(s);
    if (b === undefined) return no('a bracketed address needs the form [ADDR]:PORT');
    ({ host, portText } = b);
    if (net.isIP(host) === 0) return no(`${host || '(empty)'} is not an IP address`);
  } else {
    const colon = s.lastIndexOf(':');
    if (colon < 0) return no('no port');
    host = s.slice(0, colon);
    portText = s.slice(colon + 1);
    if (host.toLowerCase() === 'localhost') host = '127.0.0.1';
    if (!net.isIPv4(host)) {
      return no(net.isIPv6(host) ? 'put an IPv6 address in brackets'
        : `${host || '(empty)'} is not an IP address (host names are not resolved)`);
    }
  }
  const p = port(portText);
  if (typeof p !== 'number') return no(`port ${portText || '(empty)'} is not 0-65535`);
  if (opts.loopbackOnly === true && !isLoopback(host)) {
    return no(`${host} is not a loopback address; the status endpoint has no authentication, so it listens on loopback only`);
  }
  return ok({ host, port: p });
}

/** `127.0.0.1:8895` or `[::1]:8895`: the form parseStatusAddress reads back. */
export function formatStatusAddress(a: StatusAddress): string {
  return net.isIPv6(a.host) ? `[${a.host}]:${a.port}` : `${a.host}:${a.port}`;
}

/**
 * Where copies go instead of the intake domain's MX: a host (name or IP literal) and a port.
 * `bracketed` records that the admin wrote `[host]`: routing ignores it (a relay is never looked up
 * as MX), but `tdc-milter config` prints the setting back the way it was written.
 */
export interface RelaySpec {
  host: string;
  port: number;
  bracketed: boolean;
}

export const RELAY_FORMS = 'host, host:port, [ip] or [ip]:port';

const LABEL = '[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?';
const HOSTNAME_RE = new RegExp(`^${LABEL}(?:\\.${LABEL})*\\.?$`);

/** A DNS host name (letters, digits, hyphens; dot-separated labels), at most 253 characters. */
export function isHostname(text: string): boolean {
  return text.length <= 253 && HOSTNAME_RE.test(text);
}

/** `host`, `host:port`, `[host-or-ip]`, `[ip]:port` (IPv6 only in brackets); port 25 when none is given. */
export function parseRelay(text: string): Parsed<RelaySpec> {
  const no = (why: string): Parsed<RelaySpec> => ({ ok: false, expected: RELAY_FORMS, why });
  const s = text.trim();
  let host: string;
  let portText: string | undefined;
  const br = /^\[([^\]]*)\](?::(.*))?$/.exec(s);
  if (br) {
    host = br[1]!;
    portText = br[2];
    if (net.isIP(host) === 0 && !isHostname(host)) return no(`${host || '(empty)'} is not an IP address or host name`);
  } else {
    const parts = s.split(':');
    if (parts.length > 2) return no('put an IPv6 address in brackets');
    host = parts[0]!;
    portText = parts[1];
    if (!net.isIPv4(host) && !isHostname(host)) return no(`${host || '(empty)'} is not an IPv4 address or host name`);
  }
  const bracketed = br !== null;
  if (portText === undefined) return ok({ host, port: 25, bracketed });
  const p = port(portText);
  if (typeof p !== 'number') return no(p);
  return p === 0 ? no('port 0') : ok({ host, port: p, bracketed });
}

/** The relay as file text that parseRelay reads back to the same value: `[host]:port` or `host:port`. */
export function formatRelay(r: RelaySpec): string {
  // An IPv6 address can only be written in brackets.
  return r.bracketed || net.isIPv6(r.host) ? `[${r.host}]:${r.port}` : `${r.host}:${r.port}`;
}
