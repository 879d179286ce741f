/**
 * The one place that decides what a failed delivery attempt means (Cisco's retry table), like
 * Postfix's smtp_trouble.c: pure, table-tested, fed with nodemailer 10.x errors, our DNS/connect
 * errors and raw Node errors. Does not use nodemailer's `permanent`/`isTransientError` (they treat
 * 552 as permanent and know nothing of the TLS rule). Imports nothing.
 */

export type FailureClass =
  | 'tls'          // handshake, certificate, STARTTLS refused/not offered, version too low: no retry
  | 'dns_hard'     // NXDOMAIN, null MX, no address for the implicit MX: no retry
  | 'dns'          // DNS timeout, SERVFAIL, refused: one retry
  | 'smtp_special' // 503, 552: one retry
  | 'smtp_4xx'     // any other 4xx reply (421 greeting included): one retry
  | 'smtp_5xx'     // any other 5xx reply: no retry (hard bounce)
  | 'network'      // refused, reset, unreachable, timeouts, closed early: one retry
  | 'local'        // our side (bad input, stream error, config): no retry
  | 'aborted';     // we aborted the attempt (queue age, shutdown): the queue has already decided

export interface Classification {
  cls: FailureClass;
  retry: boolean;
  /** Enhanced status code for the log line, e.g. '5.1.2'. */
  status: string;
  /** Short text after the status, e.g. 'Bad destination host'. */
  text: string;
  /** The server's reply, or the error's own message. */
  detail: string;
}

/** Node/OpenSSL codes that mean the TLS handshake or the certificate failed. */
const TLS_CODE_RE = /^(ERR_TLS_|ERR_SSL_|ERR_OSSL_|CERT_|UNABLE_TO_|DEPTH_ZERO_|SELF_SIGNED_|HOSTNAME_MISMATCH|INVALID_CA|INVALID_PURPOSE|PATH_LENGTH_EXCEEDED)/;
/** c-ares error codes (dns.promises.Resolver), when one reaches us unwrapped. */
const CARES_CODES = new Set([
  'ENODATA', 'EFORMERR', 'ESERVFAIL', 'ENOTFOUND', 'ENOTIMP', 'EREFUSED', 'EBADQUERY', 'EBADNAME',
  'EBADFAMILY', 'EBADRESP', 'ETIMEOUT', 'EEOF', 'EFILE', 'ENOMEM', 'EDESTRUCTION', 'EBADSTR',
  'EBADFLAGS', 'ENONAME', 'EBADHINTS', 'ENOTINITIALIZED', 'ELOADIPHLPAPI', 'EADDRGETNETWORKPARAMS',
  'ECANCELLED', 'EAI_AGAIN',
]);
/** Errors of the connection itself (nodemailer codes and raw socket codes). */
const NETWORK_CODES = new Set([
  'ECONNECTION', 'ESOCKET', 'ETIMEDOUT', 'EPROTOCOL', 'EPROXY', 'ECONNREFUSED', 'ECONNRESET',
  'ECONNABORTED', 'EHOSTUNREACH', 'ENETUNREACH', 'EHOSTDOWN', 'ENETDOWN', 'EPIPE', 'EADDRNOTAVAIL',
]);

interface ErrorFields {
  code?: string;
  originalCode?: string;
  library?: string;
  responseCode?: number;
  response?: string;
  command?: string;
  timeoutType?: string;
  syscall?: string;
  /** Ours: set on DNS failures that must not be retried. */
  hard?: boolean;
  /** Ours: set on errors that happened between STARTTLS and the end of the handshake. */
  phase?: string;
  /** OpenSSL's short reason ('tlsv1 alert protocol version'), or the altname mismatch text. */
  reason?: string;
  message?: string;
}

function fieldsOf(err: unknown): ErrorFields {
  if (typeof err !== 'object' || err === null) return { message: String(err) };
  const e = err as Record<string, unknown>;
  const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);
  return {
    code: str(e.code),
    originalCode: str(e.originalCode),
    library: str(e.library),
    responseCode: typeof e.responseCode === 'number' ? e.responseCode : undefined,
    response: str(e.response),
    command: str(e.command),
    timeoutType: str(e.timeoutType),
    syscall: str(e.syscall),
    hard: e.hard === true,
    phase: str(e.phase),
    reason: str(e.reason),
    message: str(e.message),
  };
}

/** The enhanced status code in a reply ('550 5.7.1 no' → '5.7.1'), else 'D.0.0'. */
export function enhancedStatus(reply: string, code: number): string {
  const m = /^\d{3}[ -]([245]\.\d{1,3}\.\d{1,3})\b/.exec(reply);
  return m ? m[1]! : `${String(code).charAt(0)}.0.0`;
}

function isTls(f: ErrorFields): boolean {
  if (f.code === 'ETLS' || f.code === 'EREQUIRETLS') return true;
  if (f.timeoutType === 'UPGRADE_TIMEOUT') return true;
  if (f.command === 'STARTTLS') return true;
  if (f.phase === 'starttls') return true;
  if (f.library === 'SSL routines') return true;
  for (const c of [f.originalCode, f.code]) if (c !== undefined && TLS_CODE_RE.test(c)) return true;
  return false;
}

function isDns(f: ErrorFields): boolean {
  if (f.code === 'EDNS') return true;
  if (f.syscall !== undefined && /^(query|getaddrinfo|getHostByAddr)/.test(f.syscall)) return true;
  return f.code !== undefined && CARES_CODES.has(f.code) && f.syscall !== 'connect';
}

/** Map a failure onto the retry table; first matching row wins (ecosystem.md §3.6). */
export function classifyFailure(err: unknown): Classification {
  const f = fieldsOf(err);
  const detail = (f.response ?? f.message ?? 'unknown error').trim();
  const make = (cls: FailureClass, retry: boolean, status: string, text: string): Classification =>
    ({ cls, retry, status, text, detail });

  if (f.code === 'EABORT') return make('aborted', false, '4.4.7', 'Delivery time expired');
  if (isTls(f)) {
    // OpenSSL messages carry a file:line trailer; its short reason and the Node code say it better.
    const reply = f.response === undefined ? undefined : f.command === 'STARTTLS' ? `STARTTLS refused: ${f.response}` : f.response;
    const why = reply ?? (f.library === 'SSL routines' && f.reason ? f.reason : f.message) ?? 'unknown TLS error';
    const code = f.response === undefined ? f.originalCode ?? (f.code !== 'ETLS' && f.code !== 'ESOCKET' ? f.code : undefined) : undefined;
    return { cls: 'tls', retry: false, status: '5.7.10', text: 'TLS failure', detail: code ? `${code}: ${why.trim()}` : why.trim() };
  }
  if (isDns(f)) {
    const hard = f.hard || (f.code !== 'EDNS' && f.code === 'ENOTFOUND');
    return hard ? make('dns_hard', false, '5.1.2', 'Bad destination host') : make('dns', true, '4.4.3', 'DNS failure');
  }
  const rc = f.responseCode;
  if (rc !== undefined && rc >= 400 && rc < 600) {
    const status = enhancedStatus(f.response ?? '', rc);
    if (rc === 503 || rc === 552) return make('smtp_special', true, status, 'Rejected by intake');
    if (rc < 500) return make('smtp_4xx', true, status, 'Temporary failure at intake');
    return make('smtp_5xx', false, status, 'Rejected by intake');
  }
  if (f.code !== undefined && (NETWORK_CODES.has(f.code) || (f.originalCode !== undefined && NETWORK_CODES.has(f.originalCode)))) {
    if (f.code === 'ETIMEDOUT' || f.timeoutType !== undefined) return make('network', true, '4.4.1', 'No answer from host');
    return make('network', true, '4.4.2', 'Bad connection');
  }
  return make('local', false, '5.3.0', 'Internal error');
}
