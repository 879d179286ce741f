/**
 * The status endpoint on node:http: `GET /` (the status page, HTML), `GET /metrics` (Prometheus
 * text), `GET /status` (JSON), `GET /track/<id>` (JSON; copy id, MID, queue id or Message-ID),
 * `GET /healthz` and `GET /readyz`. Loopback only unless the caller allows more, and requests naming
 * a foreign Host are refused (DNS rebinding from a local browser). Imports util and status siblings only.
 */
import type * as http from 'node:http';
import type { Logger } from '../util/logger';
import { TdcError } from '../util/errors';
import { isLoopback, parseStatusListen } from './listen';
import { buildTrackJson, type StatusJson } from './status-json';
import type { TrackLookup } from './tracker';
import type { Readiness } from './health';
import { listenHttp, send, sendHealth, sendJson } from './http-util';

export interface StatusServerOptions {
  /** `127.0.0.1:8895`, `[::1]:8895`, port 0 for any free port. `no` is the caller's business. */
  listen: string;
  logger: Logger;
  metrics: { metricsText(): Promise<string>; readonly contentType: string };
  tracker: { find(id: string): TrackLookup | undefined; readonly capacity: number };
  status: () => StatusJson;
  /** `/readyz`: ready or why not. @default always ready */
  readiness?: () => Readiness;
  /** `GET /`: the status page (HTML). @default none (404) */
  page?: () => string;
  /** Bind a non-loopback address. The endpoint has no authentication. @default false */
  allowRemote?: boolean;
}

export interface StatusServer {
  /** Where it listens, in the form `fetchStatus` takes: `127.0.0.1:43817`, `[::1]:8895`. */
  readonly address: string;
  readonly port: number;
  close(): Promise<void>;
}

/** Host header values a loopback-only endpoint answers to: loopback literals and localhost. */
function hostAllowed(hostHeader: string | undefined): boolean {
  if (hostHeader === undefined || hostHeader === '') return true;
  const h = hostHeader.trim().toLowerCase();
  const bracketed = /^\[([^\]]+)\](?::\d+)?$/.exec(h);
  const name = bracketed ? bracketed[1]! : h.replace(/:\d+$/, '');
  return name === 'localhost' || isLoopback(name);
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
    const page = options.page;
    const known = path === '/metrics' || path === '/status' || path.startsWith('/track/') ||
      path === '/healthz' || path === '/readyz' || (path === '/' && page !== undefined);
    if (!known) {
      sendJson(res, 404, { error: `no such path ${path}; try /, /status, /metrics, /healthz, /readyz or /track/<copy id|queue id|Message-ID>` });
      return;
    }
    if (req.method !== 'GET') {
      sendJson(res, 405, { error: `method ${req.method ?? ''} not allowed; only GET` }, { Allow: 'GET' });
      return;
    }
    if (path === '/healthz' || path === '/readyz') {
      sendHealth(res, path, options.readiness ?? (() => ({ ready: true, reason: 'ok' })));
      return;
    }
    if (path === '/' && page !== undefined) {
      // The page is self-contained: no script, style or image may come from anywhere else.
      send(res, 200, 'text/html; charset=utf-8', page(), {
        'Content-Security-Policy': "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:; connect-src 'self'",
      });
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
        error: `no copy id, MID, queue id or Message-ID ${JSON.stringify(id)} among the last ${options.tracker.capacity} journal copies`,
      });
      return;
    }
    sendJson(res, 200, buildTrackJson(id, lookup));
  };

  const listener = await listenHttp(where, { setting: 'status_listen', label: 'status endpoint' }, logger, handle);
  logger.info(`status endpoint on http://${listener.address}/ (/, /status, /metrics, /healthz, /readyz, /track/<id>)`);
  return listener;
}
