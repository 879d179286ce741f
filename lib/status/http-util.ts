/**
 * What the status endpoint and the metrics listener share on node:http: replies with safe headers,
 * and a server that listens on `HOST:PORT` (port 0 allowed), logs request errors without taking the
 * daemon down, and closes with its connections. Imports util and status siblings only.
 */
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from '../util/logger';
import { TdcError, describeError } from '../util/errors';
import { formatStatusAddress, type StatusAddress } from './listen';

export const JSON_TYPE = 'application/json; charset=utf-8';
export const TEXT_TYPE = 'text/plain; charset=utf-8';

export function send(res: http.ServerResponse, code: number, type: string, body: string, extra: Record<string, string> = {}): void {
  res.writeHead(code, {
    'Content-Type': type,
    'Content-Length': Buffer.byteLength(body),
    'Cache-Control': 'no-store',
    'X-Content-Type-Options': 'nosniff',
    ...extra,
  });
  res.end(body);
}

export function sendJson(res: http.ServerResponse, code: number, doc: unknown, extra?: Record<string, string>): void {
  send(res, code, JSON_TYPE, `${JSON.stringify(doc, null, 2)}\n`, extra);
}

/** `/healthz` and `/readyz` bodies: one line each, so `check_http -s` and `curl -f` both read them. */
export function sendHealth(res: http.ServerResponse, path: '/healthz' | '/readyz', readiness: () => { ready: boolean; reason: string }): void {
  if (path === '/healthz') {
    send(res, 200, TEXT_TYPE, 'ok\n');
    return;
  }
  const r = readiness();
  send(res, r.ready ? 200 : 503, TEXT_TYPE, r.ready ? 'ok\n' : `not ready: ${r.reason}\n`);
}

export interface HttpListener {
  /** `127.0.0.1:43817`, `[::1]:8895`. */
  readonly address: string;
  readonly port: number;
  close(): Promise<void>;
}

/**
 * Serve `handle` on `where`. `setting` is the TdcError code of a refused bind, `label` starts log
 * lines and errors. A handler that throws gets a 500 and a warning line; the daemon goes on.
 */
export async function listenHttp(
  where: StatusAddress, names: { setting: string; label: string }, logger: Logger,
  handle: (req: http.IncomingMessage, res: http.ServerResponse) => Promise<void>,
): Promise<HttpListener> {
  const server = http.createServer({ requestTimeout: 10_000, headersTimeout: 5_000, keepAliveTimeout: 5_000 }, (req, res) => {
    // The body of a GET is never read; drain whatever a client sent so the socket stays usable.
    req.resume();
    handle(req, res).catch((err: unknown) => {
      logger.warn(`${names.label}: ${req.method ?? ''} ${req.url ?? ''}: ${describeError(err)}`);
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
      reject(new TdcError(names.setting, `${names.label}: cannot listen on ${formatStatusAddress(where)}: ${err.code ?? describeError(err)}`, { cause: err }));
    };
    server.once('error', onError);
    server.listen({ host: where.host, port: where.port, ipv6Only: where.host.includes(':') && where.host !== '::' }, () => {
      server.off('error', onError);
      resolve();
    });
  });
  server.on('error', (err) => logger.error(`${names.label}: ${describeError(err)}`));

  const port = (server.address() as AddressInfo).port;
  let closing: Promise<void> | undefined;
  return {
    address: formatStatusAddress({ host: where.host, port }),
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
