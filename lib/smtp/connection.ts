/**
 * The thin socket driver of one SMTP client connection: TCP connect to one address, the reply parser
 * and the client session fed from the socket, the STARTTLS upgrade (`tls.connect({ socket })`, TLS ≥
 * 1.2 from the shared SecureContext, certificate checked against the host name, session resumption
 * through a TlsSessionCache), bodies written corked, connect/command/data timeouts on the injected
 * Clock. Every way it can end is a typed SmtpFailure. Imports util and this folder only.
 */
import * as net from 'node:net';
import * as tls from 'node:tls';
import type { Clock, TimerHandle } from '../util/clock';
import { describeError } from '../util/errors';
import { ClientSession, type SessionOutput, type SmtpFailure, type SmtpTransaction, type TransactionResult } from './client-session';
import { SmtpProtocolError } from './errors';
import { ReplyParser } from './reply-parser';
import type { TlsSessionCache } from './tls-sessions';

export interface SmtpConnectionOptions {
  /** The host's name: the certificate must be valid for it (or for `servername` when set). */
  host: string;
  ip: string;
  port: number;
  heloName: string;
  /** One per CA setting, shared by every connection (building one parses every root CA). */
  secureContext: tls.SecureContext;
  /** Tests: verify this name instead of `host`. */
  servername?: string;
  tlsSessions?: TlsSessionCache;
  clock: Clock;
  connectTimeout: number;
  commandTimeout: number;
}

export interface TlsFacts {
  protocol: string;
  cipher: string;
  /** The handshake resumed an earlier session (RFC 8446 tickets, or TLS 1.2 sessions). */
  resumed: boolean;
}

export interface SmtpConnectionHandlers {
  /** TCP is up. */
  onConnected?(localAddress: string): void;
  onTls?(facts: TlsFacts): void;
  /** The session can take a transaction. */
  onReady(): void;
  onTransactionDone(result: TransactionResult): void;
  /** The socket is gone. `failure` when the connection ended abnormally (never set after QUIT). */
  onClosed(failure: SmtpFailure | undefined): void;
}

/** TLS and OpenSSL error codes that say the handshake or the certificate failed. */
const TLS_CODE_RE = /^(ERR_TLS_|ERR_SSL_|ERR_OSSL_|CERT_|UNABLE_TO_|DEPTH_ZERO_|SELF_SIGNED_|HOSTNAME_MISMATCH|INVALID_CA|INVALID_PURPOSE|PATH_LENGTH_EXCEEDED)/;

function codeOf(err: unknown): string | undefined {
  const c = typeof err === 'object' && err !== null ? (err as { code?: unknown }).code : undefined;
  return typeof c === 'string' ? c : undefined;
}

export class SmtpConnection {
  readonly #o: SmtpConnectionOptions;
  readonly #h: SmtpConnectionHandlers;
  readonly #session: ClientSession;
  readonly #parser = new ReplyParser();
  #socket: net.Socket;
  #timer: TimerHandle | undefined;
  #connected = false;
  #closed = false;
  #finished = false;
  /** The first failure, kept until the socket's close reports it. */
  #failure: SmtpFailure | undefined;
  #localAddress = '';

  constructor(options: SmtpConnectionOptions, handlers: SmtpConnectionHandlers) {
    this.#o = options;
    this.#h = handlers;
    this.#session = new ClientSession(options.heloName);
    const socket = net.connect({ host: options.ip, port: options.port, family: net.isIPv6(options.ip) ? 6 : 4 });
    this.#socket = socket;
    this.#arm(options.connectTimeout, () => this.#fail({ kind: 'timeout', phase: 'connect', message: `connect timeout after ${options.connectTimeout} ms to ${options.ip}:${options.port}` }));
    socket.once('connect', () => {
      this.#connected = true;
      this.#localAddress = socket.localAddress ?? '';
      this.#h.onConnected?.(this.#localAddress);
      this.#arm(options.commandTimeout, () => this.#apply(this.#session.timeout(`no greeting within ${options.commandTimeout} ms`)));
    });
    this.#listen(socket);
  }

  get localAddress(): string {
    return this.#localAddress;
  }

  get session(): ClientSession {
    return this.#session;
  }

  /** Send one copy; `onTransactionDone` follows. Only after `onReady`. */
  start(t: SmtpTransaction): void {
    this.#apply(this.#session.start(t));
  }

  /** QUIT when idle, close otherwise. */
  quit(): void {
    this.#apply(this.#session.quit());
  }

  /** End it now: a transaction in flight fails with 'aborted'. */
  abort(message: string): void {
    if (this.#closed) return;
    this.#apply(this.#session.abort(message));
  }

  #listen(socket: net.Socket): void {
    socket.on('data', (chunk: Buffer) => this.#data(chunk));
    socket.on('error', (err: Error) => this.#socketError(err));
    socket.once('close', () => this.#socketClosed());
    socket.on('drain', () => {
      // The body is still going out: progress restarts the data timer.
      if (this.#session.awaiting === 'message') this.#armReply();
    });
  }

  #data(chunk: Buffer): void {
    if (this.#closed) return;
    let parsed: ReturnType<ReplyParser['pushUntilError']>;
    try {
      parsed = this.#parser.pushUntilError(chunk);
    } catch (err) {
      parsed = { replies: [], error: new SmtpProtocolError('SMTP_REPLY_MALFORMED', describeError(err)) };
    }
    // The replies before a malformed line count; the protocol error comes after them.
    for (const r of parsed.replies) {
      if (this.#closed) return;
      this.#apply(this.#session.receive(r));
    }
    if (parsed.error && !this.#closed) this.#apply(this.#session.protocolError(parsed.error));
  }

  #socketError(err: Error): void {
    if (this.#closed) return;
    const code = codeOf(err);
    if (!this.#connected) {
      this.#fail({ kind: 'network', phase: 'connect', message: err.message, ...(code ? { code } : {}) });
    } else if (this.#session.state === 'tls' || (code !== undefined && TLS_CODE_RE.test(code))) {
      this.#apply(this.#session.tlsFailed(err.message, code));
    } else {
      this.#apply(this.#session.closed(err.message, code ?? 'ESOCKET'));
    }
  }

  #socketClosed(): void {
    if (!this.#closed) {
      if (!this.#connected) this.#fail({ kind: 'network', phase: 'connect', message: 'connection closed before it was up' });
      else if (this.#session.state === 'tls') this.#apply(this.#session.tlsFailed('connection closed during the TLS handshake'));
      else this.#apply(this.#session.closed(this.#parser.pending ? 'connection closed in the middle of a reply' : 'connection closed by the server'));
    }
    this.#finish();
  }

  /** Write what the session says and carry out its actions. */
  #apply(out: SessionOutput): void {
    if (out.write.length > 0 && !this.#socket.destroyed) {
      if (out.write.length === 1) {
        this.#socket.write(out.write[0]!);
      } else {
        // A body: few large writes, gathered while corked.
        this.#socket.cork();
        for (const w of out.write) this.#socket.write(w);
        this.#socket.uncork();
      }
    }
    for (const a of out.actions) {
      switch (a.type) {
        case 'start_tls':
          this.#startTls();
          break;
        case 'ready':
          this.#h.onReady();
          break;
        case 'transaction_done':
          this.#h.onTransactionDone(a.result);
          break;
        case 'close': {
          this.#failure ??= a.failure;
          this.#closed = true;
          this.#cancelTimer();
          const socket = this.#socket;
          if (out.write.length > 0 || a.failure === undefined) {
            // Let a QUIT written just now go out, then close (whatever the server does). After the
            // 221 too: the connection counts until the server has let go of it (max_connections as
            // the intake counts them), or the command timeout.
            socket.end();
            this.#arm(this.#o.commandTimeout, () => socket.destroy());
          } else {
            socket.destroy();
          }
          return;
        }
      }
    }
    if (!this.#closed) this.#armReply();
  }

  #armReply(): void {
    const wait = this.#session.awaiting;
    if (wait === undefined) {
      this.#cancelTimer();
      return;
    }
    const ms = this.#o.commandTimeout;
    const what = wait === 'message' ? 'no progress on the message or no reply to it'
      : wait === 'handshake' ? 'TLS handshake not done' : `no reply in state ${this.#session.state}`;
    this.#arm(ms, () => this.#apply(this.#session.timeout(`${what} within ${ms} ms`)));
  }

  #startTls(): void {
    if (this.#parser.pending) {
      // RFC 3207 5 (the STARTTLS injection of CVE-2011-0411): bytes after the 220 came in plaintext and
      // would be read as the TLS server's first reply. Replies after it are refused by the session.
      this.#apply(this.#session.protocolError(new SmtpProtocolError('SMTP_UNEXPECTED_REPLY', 'plaintext after the 220 reply to STARTTLS')));
      return;
    }
    const o = this.#o;
    const plain = this.#socket;
    plain.removeAllListeners('data');
    plain.removeAllListeners('drain');
    const servername = o.servername ?? (net.isIP(o.host) === 0 ? o.host : undefined);
    const key = this.#tlsKey();
    const options: tls.ConnectionOptions = {
      socket: plain,
      secureContext: o.secureContext,
      minVersion: 'TLSv1.2',
      rejectUnauthorized: true,
    };
    if (servername !== undefined) options.servername = servername;
    else options.checkServerIdentity = (_name, cert) => tls.checkServerIdentity(o.host, cert);
    const session = o.tlsSessions?.get(key);
    if (session) options.session = session;
    const secure = tls.connect(options);
    this.#socket = secure;
    secure.on('session', (s: Buffer) => o.tlsSessions?.set(key, s));
    secure.once('secureConnect', () => {
      if (this.#closed) return;
      const cipher = secure.getCipher();
      this.#h.onTls?.({ protocol: secure.getProtocol() ?? 'unknown', cipher: cipher.standardName ?? cipher.name, resumed: secure.isSessionReused() });
      this.#apply(this.#session.tlsUp());
    });
    this.#listen(secure);
    this.#armReply();
    // The plain socket's close and errors now show up on the TLS socket.
    plain.removeAllListeners('close');
    plain.removeAllListeners('error');
    plain.on('error', () => { /* reported by the TLS socket */ });
  }

  #tlsKey(): string {
    return `${this.#o.servername ?? this.#o.host}:${this.#o.port}`;
  }

  /** Before the session is involved (TCP connect): fail and close. */
  #fail(failure: SmtpFailure): void {
    if (this.#closed) return;
    this.#failure ??= failure;
    this.#closed = true;
    this.#cancelTimer();
    this.#socket.destroy();
  }

  #finish(): void {
    if (this.#finished) return;
    this.#finished = true;
    this.#closed = true;
    this.#cancelTimer();
    const f = this.#failure;
    this.#failure = undefined;
    const h = this.#h;
    // One turn of the event loop later: the server has then seen our FIN too, so a slot freed here and
    // taken at once by a new connection does not count twice at the intake (max_connections as it counts).
    setImmediate(() => h.onClosed(f));
  }

  #arm(ms: number, fn: () => void): void {
    this.#cancelTimer();
    this.#timer = this.#o.clock.setTimer(ms, () => {
      this.#timer = undefined;
      fn();
    });
  }

  #cancelTimer(): void {
    this.#timer?.cancel();
    this.#timer = undefined;
  }
}
