/**
 * Read-only, guarded looks at nodemailer 10.x pool internals for facts it has no API for: which
 * connection a pool resource (`cid`) uses and, once STARTTLS is done, the negotiated protocol and
 * cipher. Everything here may come back undefined on another nodemailer version; callers degrade
 * (log 'unknown'), they never fail a delivery because of it. The only private field read is the
 * pool's `_connections`; `PoolResource.connection` and `SMTPConnection._socket` are typed public.
 * Imports nothing of the project.
 */
import * as tls from 'node:tls';

interface ConnectionLike {
  id?: unknown;
  secure?: unknown;
  _socket?: unknown;
}

interface ResourceLike {
  id?: unknown;
  connection?: unknown;
}

function resources(pool: unknown): ResourceLike[] {
  if (typeof pool !== 'object' || pool === null) return [];
  const list = (pool as { _connections?: unknown })._connections;
  return Array.isArray(list) ? (list as ResourceLike[]) : [];
}

function asConnection(v: unknown): ConnectionLike | undefined {
  return typeof v === 'object' && v !== null ? (v as ConnectionLike) : undefined;
}

/** The SMTPConnection `sid` of pool resource `cid`. */
export function sidOfResource(pool: unknown, cid: number): string | undefined {
  const r = resources(pool).find((x) => x.id === cid);
  const id = asConnection(r?.connection)?.id;
  return typeof id === 'string' ? id : undefined;
}

export interface TlsFacts {
  protocol: string;
  cipher: string;
}

/** Protocol and cipher of the connection with `sid`, when its socket is a finished TLS socket. */
export function tlsFactsOf(pool: unknown, sid: string): TlsFacts | undefined {
  for (const r of resources(pool)) {
    const c = asConnection(r.connection);
    if (!c || c.id !== sid) continue;
    const s = c._socket;
    if (!(s instanceof tls.TLSSocket) || !s.encrypted) return undefined;
    const protocol = s.getProtocol();
    const cipher = s.getCipher();
    if (!protocol) return undefined;
    return { protocol, cipher: cipher.standardName || cipher.name };
  }
  return undefined;
}

/**
 * Whether the connection with `sid` is known to be in plaintext right now: true only when the
 * connection was found and its socket is not TLS. Undefined when it cannot be told.
 */
export function isPlaintext(pool: unknown, sid: string): boolean | undefined {
  for (const r of resources(pool)) {
    const c = asConnection(r.connection);
    if (!c || c.id !== sid) continue;
    const s = c._socket;
    if (typeof s !== 'object' || s === null) return undefined;
    return !(s instanceof tls.TLSSocket);
  }
  return undefined;
}
