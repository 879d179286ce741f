/**
 * Errors and small error helpers of the SMTP delivery agent: the TCP connect failure (shaped like
 * nodemailer's socket errors so the classifier treats both alike), which failures move on to the
 * next MX host, abort helpers, and a realm-proof error message. Imports util and this folder only.
 */
import { TdcError } from '../util/errors';
import { classifyFailure } from './classify';

/** A TCP connect that failed; shaped like nodemailer's socket errors so the classifier treats both alike. */
export class ConnectFailure extends TdcError {
  readonly originalCode: string | undefined;
  readonly command = 'CONN';
  readonly address: string;
  readonly port: number;
  readonly dcid: number;
  readonly timeoutType: string | undefined;
  constructor(message: string, code: 'ESOCKET' | 'ETIMEDOUT', originalCode: string | undefined, address: string, port: number, dcid: number) {
    super(code, message);
    this.originalCode = originalCode;
    this.address = address;
    this.port = port;
    this.dcid = dcid;
    this.timeoutType = code === 'ETIMEDOUT' ? 'CONNECT_TIMEOUT' : undefined;
  }
}

/** Whether the next MX host should be tried in the same attempt. */
export function isFailover(err: unknown): boolean {
  const c = classifyFailure(err);
  if (c.cls === 'network') return true;
  const rc = (err as { responseCode?: unknown } | null)?.responseCode;
  return c.cls === 'smtp_4xx' && rc === 421;
}

/** An error's message whatever realm it comes from. */
export function errorText(err: unknown): string {
  const m = typeof err === 'object' && err !== null ? (err as { message?: unknown }).message : undefined;
  return typeof m === 'string' ? m : String(err);
}

export function abortError(signal: AbortSignal): Error {
  return Object.assign(new Error(`aborted: ${errorText(signal.reason)}`), { code: 'EABORT' });
}

/** Reject as soon as `signal` aborts (used for DNS lookups, which cannot be cancelled one by one). */
export function raceAbort<T>(p: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(abortError(signal));
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(abortError(signal));
    signal.addEventListener('abort', onAbort, { once: true });
    p.then(
      (v) => { signal.removeEventListener('abort', onAbort); resolve(v); },
      (e: unknown) => { signal.removeEventListener('abort', onAbort); reject(e); },
    );
  });
}
