/**
 * What the CLI's `status` and `track` commands use: GET /status and /track/<id> from the running
 * daemon's status endpoint over loopback HTTP, with error text an admin can act on.
 * Imports util and status siblings only.
 */
import * as http from 'node:http';
import { TdcError, describeError } from '../util/errors';
import { formatStatusAddress, parseStatusListen } from './listen';
import type { StatusJson, TrackJson } from './status-json';

/** `not_running` (nothing listens), `timeout`, `bad_reply` (not our JSON), `http` (an error status). */
export type StatusClientErrorCode = 'not_running' | 'timeout' | 'bad_reply' | 'http';

export class StatusClientError extends TdcError {
  declare readonly code: StatusClientErrorCode;
  constructor(code: StatusClientErrorCode, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
  }
}

export interface FetchOptions {
  /** Give up after this many ms. @default 5000 */
  timeoutMs?: number;
}

const MAX_REPLY_BYTES = 16 * 1024 * 1024;

interface Reply {
  status: number;
  body: string;
}

function get(listen: string, path: string, options: FetchOptions): Promise<Reply> {
  const where = parseStatusListen(listen);
  const shown = formatStatusAddress(where);
  const timeoutMs = options.timeoutMs ?? 5000;
  return new Promise<Reply>((resolve, reject) => {
    const req = http.request(
      { host: where.host, port: where.port, path, method: 'GET', agent: false, headers: { Host: shown, Accept: 'application/json' } },
      (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (c: Buffer) => {
          size += c.length;
          if (size > MAX_REPLY_BYTES) {
            req.destroy(new StatusClientError('bad_reply', `the status endpoint at ${shown} sent more than ${MAX_REPLY_BYTES} bytes`));
            return;
          }
          chunks.push(c);
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
        res.on('error', reject);
      },
    );
    req.setTimeout(timeoutMs, () => {
      req.destroy(new StatusClientError('timeout', `the status endpoint at ${shown} did not answer within ${timeoutMs} ms`));
    });
    req.on('error', (err: NodeJS.ErrnoException) => {
      if (err instanceof StatusClientError) reject(err);
      else if (err.code === 'ECONNREFUSED') {
        reject(new StatusClientError('not_running', `tdc-milter is not running (no status endpoint at ${shown})`, { cause: err }));
      } else {
        reject(new StatusClientError('not_running', `cannot reach the status endpoint at ${shown}: ${err.code ?? describeError(err)}`, { cause: err }));
      }
    });
    req.end();
  });
}

function parseJson(listen: string, reply: Reply): unknown {
  try {
    return JSON.parse(reply.body) as unknown;
  } catch {
    throw new StatusClientError('bad_reply', `the answer from ${listen} is not JSON (is something else listening there?)`);
  }
}

function errorText(doc: unknown): string {
  if (typeof doc === 'object' && doc !== null && typeof (doc as { error?: unknown }).error === 'string') return (doc as { error: string }).error;
  return '';
}

/** GET /status. Throws StatusClientError. */
export async function fetchStatus(listen: string, options: FetchOptions = {}): Promise<StatusJson> {
  const reply = await get(listen, '/status', options);
  const doc = parseJson(listen, reply);
  if (reply.status !== 200) throw new StatusClientError('http', `status endpoint at ${listen}: HTTP ${reply.status} ${errorText(doc)}`.trim());
  const d = doc as Partial<StatusJson>;
  if (typeof d.version !== 'string' || typeof d.queue !== 'object' || !Array.isArray(d.domains) || typeof d.milter !== 'object') {
    throw new StatusClientError('bad_reply', `the answer from ${listen} is not a tdc-milter status document`);
  }
  return doc as StatusJson;
}

/** GET /track/<id>; null when the daemon has no copy id, MID, queue id or Message-ID like that. Throws StatusClientError. */
export async function fetchTrack(listen: string, id: string, options: FetchOptions = {}): Promise<TrackJson | null> {
  const reply = await get(listen, `/track/${encodeURIComponent(id)}`, options);
  const doc = parseJson(listen, reply);
  if (reply.status === 404) return null;
  if (reply.status !== 200) throw new StatusClientError('http', `status endpoint at ${listen}: HTTP ${reply.status} ${errorText(doc)}`.trim());
  if (!Array.isArray((doc as Partial<TrackJson>).records)) {
    throw new StatusClientError('bad_reply', `the answer from ${listen} is not a tdc-milter tracking document`);
  }
  return doc as TrackJson;
}
