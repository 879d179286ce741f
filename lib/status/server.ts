/**
 * The status endpoint on node:http: `GET /metrics` (Prometheus text), `GET /status` (JSON),
 * `GET /track/<id>` (JSON; copy id, queue id or Message-ID). Loopback only unless the caller allows
 * more, and requests naming a foreign Host are refused (DNS rebinding from a local browser).
 * Imports util and status siblings only.
 */
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from '../util/logger';
import { TdcError, describeError } from '../util/errors';
import { formatStatusAddress, isLoopback, parseStatusListen } from './listen';
import { buildTrackJson, type StatusJson } from './status-json';
import type { TrackLookup } from './tracker';

export interface StatusServerOptions {
  /** `127.0.0.1:8895`, `[::1]:8895`, port 0 for any free port. `no` is the caller's business. */
  listen: string;
  logger: Logger;
  metrics: { metricsText(): Promise<string>; readonly contentType: string };
  tracker: { find(id: string): TrackLookup | undefined; readonly capacity: number };
  status: () => StatusJson;
  /** Bind a non-loopback address. The endpoint has no authentication. @default false */
  allowRemote?: boolean;
}

export interface StatusServer {
  /** Where it listens, in the form `fetchStatus` takes: `127.0.0.1:43817`, `[::1]:8895`. */
  readonly address: string;
  readonly port: number;
  close(): Promise<void>;
}

const JSON_TYPE = 'application/json; charset=utf-8';

/** Host header values a loopback-only endpoint answers to: loopback literals and localhost. */
function hostAllowed(hostHeader: string | undefined): boolean {
  if (hostHeader === undefined || hostHeader === '') return true;
  const h = hostHeader.trim().toLowerCase();
  const bracketed = /^\[([^\]]+)\](?::\d+)?$/.exec(h);
  const name = bracketed ? bracketed[1]! : h.replace(/:\d+$/, '');
  return name === 'localhost' || isLoopback(name);
}

function send(res: http.ServerResponse, code: number, type: string, body: string, extra: Record<string, string> = {}): void {
  res.writeHead(code, {
    'Content-Type': type,
    'Content-Length': Buffer.byteLength(body),
    'Cache-Control': 'no-store',
    'X-Content-Type-Options': 'nosniff',
    ...extra,
  });
  res.end(body);
}

function sendJson(res: http.ServerResponse, code: number, doc: unknown, extra?: Record<string, string>): void {
  send(res, code, JSON_TYPE, `${JSON.stringify(doc, null, 2)}\n`, extra);
}

/** Start the endpoint; rejects with TdcError('status_listen') on a bad or refused address. */
export async function startStatusServer(options: StatusServerOptions): Promise<StatusServer> {
  const { logger } = options;
  const where = parseStatusListen(options.listen);
  const allowRemote = options.allowRemote === true;
  if (!allowRemote && !isLoopback(where.host)) {
    throw new TdcError(
      'status_listen',
      `status_listen ${options.listen}: not a loopback address; the status endpoint has no authentication, so it binds only 127.0.0.1 or ::1 unless remote access is allowed explicitly`,
    );
  }

  const handle = async (req: http.IncomingMessage, res: http.ServerResponse): Promise<void> => {
    if (!allowRemote && !hostAllowed(req.headers.host)) {
      sendJson(res, 403, { error: `Host ${req.headers.host ?? ''} is not this loopback endpoint` });
      return;
    }
    const path = (req.url ?? '/').split('?')[0]!;
    const known = path === '/metrics' || path === '/status' || path.startsWith('/track/');
    if (!known) {
      sendJson(res, 404, { error: `no such path ${path}; try /status, /metrics or /track/<copy id|queue id|Message-ID>` });
      return;
    }
    if (req.method !== 'GET') {
      sendJson(res, 405, { error: `method ${req.method ?? ''} not allowed; only GET` }, { Allow: 'GET' });
      return;
    }
    if (path === '/metrics') {
      send(res, 200, options.metrics.contentType, await options.metrics.metricsText());
      return;
    }
    if (path === '/status') {
      sendJson(res, 200, options.status());
      return;
    }
    let id: string;
    try {
      id = decodeURIComponent(path.slice('/track/'.length));
    } catch {
      sendJson(res, 400, { error: 'the id is not valid percent-encoding' });
      return;
    }
    const lookup = id === '' ? undefined : options.tracker.find(id);
    if (!lookup) {
      sendJson(res, 404, {
        error: `no copy id, queue id or Message-ID ${JSON.stringify(id)} among the last ${options.tracker.capacity} journal copies`,
      });
      return;
    }
    sendJson(res, 200, buildTrackJson(id, lookup));
  };

  const server = http.createServer({ requestTimeout: 10_000, headersTimeout: 5_000, keepAliveTimeout: 5_000 }, (req, res) => {
    // The body of a GET is never read; drain whatever a client sent so the socket stays usable.
    req.resume();
    handle(req, res).catch((err: unknown) => {
      logger.warn(`status endpoint: ${req.method ?? ''} ${req.url ?? ''}: ${describeError(err)}`);
      if (!res.headersSent) sendJson(res, 500, { error: 'internal error; see the mail log' });
      else res.destroy();
    });
  });
  server.maxConnections = 64;
  server.on('clientError', (_err, socket) => {
    if (socket.writable) socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n');
    else socket.destroy();
  });

  await new Promise<void>((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException) => {
      reject(new TdcError('status_listen', `status endpoint: cannot listen on ${options.listen}: ${err.code ?? describeError(err)}`, { cause: err }));
    };
    server.once('error', onError);
    server.listen({ host: where.host, port: where.port, ipv6Only: where.host.includes(':') }, () => {
      server.off('error', onError);
      resolve();
    });
  });
  server.on('error', (err) => logger.error(`status endpoint: ${describeError(err)}`));

  const port = (server.address() as AddressInfo).port;
  const address = formatStatusAddress({ host: where.host, port });
  logger.info(`status endpoint on http://${address}/ (/status, /metrics, /track/<id>)`);

  let closing: Promise<void> | undefined;
  return {
    address,
    port,
    close() {
      closing ??= new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      return closing;
    },
  };
}
