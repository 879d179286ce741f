/**
 * Parses and formats milter listen addresses: Postfix style `inet:HOST:PORT`,
 * `inet6:[ADDR]:PORT`, `unix:/path`, `local:/path`, plus libmilter's `inet:PORT@HOST` and
 * `inet6:PORT@ADDR`. Anything else (e.g. `tcp:`) is a MilterListenError saying what was expected.
 * Pure. Imports node:net (address checks) and ./errors.
 */
import { isIP, isIPv6 } from 'node:net';
import { MilterListenError } from './errors';

export type ListenAddress =
  | { kind: 'inet'; host: string; port: number }
  | { kind: 'inet6'; host: string; port: number }
  | { kind: 'unix'; path: string };

const FORMS = 'inet:HOST:PORT, inet6:[ADDR]:PORT, unix:/path or local:/path';
const HOSTNAME = /^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?$/;

function fail(text: string, why: string): never {
  throw new MilterListenError(`listen: expected ${FORMS}, got "${text}" (${why})`);
}

function parsePort(text: string, raw: string): number {
  if (!/^\d{1,5}$/.test(raw)) fail(text, `port "${raw}" is not a number`);
  const port = Number(raw);
  if (port > 65535) fail(text, `port ${port} is above 65535`);
  return port;
}

export function parseListenAddress(text: string): ListenAddress {
  const colon = text.indexOf(':');
  if (colon <= 0) fail(text, 'no transport prefix');
  const transport = text.slice(0, colon).toLowerCase();
  const rest = text.slice(colon + 1);
  switch (transport) {
    case 'unix':
    case 'local': {
      if (rest === '') fail(text, 'empty socket path');
      if (!rest.startsWith('/')) fail(text, 'the socket path must be absolute');
      if (rest.includes('\0')) fail(text, 'NUL in the socket path');
      return { kind: 'unix', path: rest };
    }
    case 'inet': {
      let host: string;
      let port: string;
      const at = rest.indexOf('@');
      if (at >= 0) {
        port = rest.slice(0, at); // libmilter form PORT@HOST
        host = rest.slice(at + 1);
      } else {
        const last = rest.lastIndexOf(':');
        if (last < 0) fail(text, 'no port');
        host = rest.slice(0, last);
        port = rest.slice(last + 1);
      }
      if (host.startsWith('[') || host.includes(':')) fail(text, 'an IPv6 address needs inet6:[ADDR]:PORT');
      if (host === '') fail(text, 'empty host');
      if (isIP(host) !== 4 && !HOSTNAME.test(host)) fail(text, `"${host}" is not an IPv4 address or host name`);
      return { kind: 'inet', host, port: parsePort(text, port) };
    }
    case 'inet6': {
      let host: string;
      let port: string;
      const at = rest.indexOf('@');
      if (rest.startsWith('[')) {
        const close = rest.indexOf(']');
        if (close < 0 || rest[close + 1] !== ':') fail(text, 'expected [ADDR]:PORT');
        host = rest.slice(1, close);
        port = rest.slice(close + 2);
      } else if (at >= 0) {
        port = rest.slice(0, at); // libmilter form PORT@ADDR
        host = rest.slice(at + 1).replace(/^\[(.*)\]$/, '$1');
      } else {
        fail(text, 'put the IPv6 address in brackets: inet6:[ADDR]:PORT');
      }
      if (!isIPv6(host)) fail(text, `"${host}" is not an IPv6 address`);
      return { kind: 'inet6', host, port: parsePort(text, port) };
    }
    case 'tcp':
      return fail(text, 'the TCP transport is called "inet"');
    default:
      return fail(text, `unknown transport "${text.slice(0, colon)}"`);
  }
}

export function formatListenAddress(a: ListenAddress): string {
  switch (a.kind) {
    case 'inet': return `inet:${a.host}:${a.port}`;
    case 'inet6': return `inet6:[${a.host}]:${a.port}`;
    case 'unix': return `unix:${a.path}`;
  }
}
