/**
 * One SMTP client connection's state machine without sockets: replies and socket facts in, bytes to
 * write and actions out. EHLO → STARTTLS (always; never plaintext) → EHLO again (pre-TLS capabilities
 * forgotten, RFC 3207) → transactions (MAIL FROM:<> with BODY=/SIZE=, RCPT, DATA or BDAT; pipelined
 * in one write when offered, RFC 2920) → RSET after a failed one → QUIT. A closed state union; a reply
 * in a state that expects none is a protocol error. Imports only this folder.
 */
import { SmtpProtocolError } from './errors';
import { dotStuff, endOfData, START_OF_DATA } from './dot-stuff';
import type { SmtpReply } from './reply-parser';

/** Where in the dialogue something happened (the delivery contract's phases, plus RSET and QUIT). */
export type SmtpPhase =
  | 'connect' | 'greeting' | 'ehlo' | 'starttls' | 'tls'
  | 'mail' | 'rcpt' | 'data' | 'message' | 'rset' | 'quit';

/** What ended a transaction or a connection, as facts; the delivery agent decides what it means. */
export type SmtpFailure =
  | { kind: 'reply'; phase: SmtpPhase; reply: SmtpReply }
  /** The copy is over the server's SIZE (RFC 1870); nothing was sent. */
  | { kind: 'size'; phase: 'mail'; limit: number; bytes: number }
  /** An 8-bit (or binary) copy and a server without 8BITMIME (RFC 6152); nothing was sent. */
  | { kind: 'no_8bitmime'; phase: 'mail'; body: '8bit' | 'binary' }
  /** The TLS handshake failed (certificate, version, closed during it). */
  | { kind: 'tls'; phase: 'tls'; code?: string; message: string }
  /** Refused, reset, closed by the server, unreachable. */
  | { kind: 'network'; phase: SmtpPhase; code?: string; message: string }
  /** A reply (or the connect, or the body's progress) that never came in time. */
  | { kind: 'timeout'; phase: SmtpPhase; message: string }
  | { kind: 'protocol'; phase: SmtpPhase; error: SmtpProtocolError }
  /** We ended it (the copy's attempt was aborted, or the agent is closing). */
  | { kind: 'aborted'; phase: SmtpPhase; message: string };

/** What the server offered in its EHLO reply. */
export interface Capabilities {
  pipelining: boolean;
  eightBitMime: boolean;
  chunking: boolean;
  binaryMime: boolean;
  startTls: boolean;
  /** The SIZE keyword's limit in bytes: undefined when SIZE is not offered, 0 when offered without a limit. */
  size: number | undefined;
}

export function parseEhlo(reply: SmtpReply): Capabilities {
  const caps: Capabilities = {
    pipelining: false, eightBitMime: false, chunking: false, binaryMime: false, startTls: false, size: undefined,
  };
  // The first line is the greeting text ("mx.example Hello"), the rest are keywords.
  for (const line of reply.lines.slice(1)) {
    const [word = '', arg] = line.trim().toUpperCase().split(/\s+/);
    if (word === 'PIPELINING') caps.pipelining = true;
    else if (word === '8BITMIME') caps.eightBitMime = true;
    else if (word === 'CHUNKING') caps.chunking = true;
    else if (word === 'BINARYMIME') caps.binaryMime = true;
    else if (word === 'STARTTLS') caps.startTls = true;
    else if (word === 'SIZE') {
      const n = arg === undefined ? 0 : Number(arg);
      caps.size = Number.isSafeInteger(n) && n >= 0 ? n : 0;
    }
  }
  return caps;
}

/** One copy to send: the envelope recipient, the bytes and what they need. */
export interface SmtpTransaction {
  recipient: string;
  raw: Buffer | readonly Buffer[];
  bytes: number;
  body: '7bit' | '8bit' | 'binary';
}

export type TransactionResult =
  | { ok: true; reply: SmtpReply }
  | { ok: false; failure: SmtpFailure };

export type SessionAction =
  /** Upgrade the socket to TLS now, then call `tlsUp()` (or `tlsFailed()`). */
  | { type: 'start_tls' }
  /** The connection can take a transaction (`start`). */
  | { type: 'ready' }
  | { type: 'transaction_done'; result: TransactionResult }
  /** Close the socket (after writing `write`). `failure` when the connection ended abnormally. */
  | { type: 'close'; failure?: SmtpFailure };

export interface SessionOutput {
  write: Buffer[];
  actions: SessionAction[];
}

export type ClientState =
  | 'greeting'   // connected, awaiting the 220
  | 'ehlo'       // awaiting the first EHLO reply
  | 'starttls'   // awaiting the reply to STARTTLS
  | 'tls'        // the driver is doing the handshake
  | 'ehlo_tls'   // awaiting the EHLO reply over TLS
  | 'ready'      // between transactions
  | 'transaction'
  | 'rset'       // awaiting the reply to RSET after a failed transaction
  | 'quit'       // awaiting the reply to QUIT
  | 'closed';

/** Replies a transaction still waits for, in order. */
type Step = 'mail' | 'rcpt' | 'data' | 'message' | 'discard';

interface Txn {
  t: SmtpTransaction;
  bdat: boolean;
  expect: Step[];
  failure?: SmtpFailure;
  /** MAIL and RCPT (and DATA, unless BDAT) went in one write (RFC 2920). */
  pipelined: boolean;
}

const CRLF = '\r\n';
const b = (s: string): Buffer => Buffer.from(s, 'latin1');

/** The phase a state is waiting in (for failures that come from outside: close, timeout). */
const STATE_PHASE: Readonly<Record<ClientState, SmtpPhase>> = {
  greeting: 'greeting', ehlo: 'ehlo', starttls: 'starttls', tls: 'tls', ehlo_tls: 'ehlo',
  ready: 'mail', transaction: 'mail', rset: 'rset', quit: 'quit', closed: 'quit',
};

export class ClientSession {
  #state: ClientState = 'greeting';
  #caps: Capabilities | undefined;
  #txn: Txn | undefined;
  readonly #helo: string;

  constructor(heloName: string) {
    if (!/^[A-Za-z0-9.[\]:-]+$/.test(heloName)) throw new Error(`EHLO name: expected a host name, got ${JSON.stringify(heloName)}`);
    this.#helo = heloName;
  }

  get state(): ClientState {
    return this.#state;
  }

  /** Capabilities of the current EHLO (over TLS once that is up). */
  get capabilities(): Capabilities | undefined {
    return this.#caps;
  }

  /** The phase we are in, for a failure reported from outside (close, timeout, socket error). */
  get phase(): SmtpPhase {
    if (this.#state === 'transaction' && this.#txn) {
      const next = this.#txn.expect[0];
      return next === undefined || next === 'discard' ? 'data' : next;
    }
    return STATE_PHASE[this.#state];
  }

  /** Waiting for the server (the driver runs the command timer), and for which kind of wait. */
  get awaiting(): 'command' | 'handshake' | 'message' | undefined {
    switch (this.#state) {
      case 'greeting': case 'ehlo': case 'starttls': case 'ehlo_tls': case 'rset': case 'quit':
        return 'command';
      case 'tls':
        // A server that took STARTTLS and then stays silent must not hold the connection forever.
        return 'handshake';
      case 'transaction':
        return this.#txn?.expect[0] === 'message' ? 'message' : 'command';
      default:
        return undefined;
    }
  }

  /** A complete reply from the server. */
  receive(reply: SmtpReply): SessionOutput {
    const out: SessionOutput = { write: [], actions: [] };
    const s = this.#state;
    if (reply.code === 421 && s !== 'quit' && s !== 'closed') {
      // Service closing: whatever we were doing, this connection is over (a soft result).
      return this.#end(out, { kind: 'reply', phase: this.phase, reply });
    }
    switch (s) {
      case 'greeting':
        if (reply.code !== 220) return this.#end(out, { kind: 'reply', phase: 'greeting', reply }, true);
        out.write.push(b(`EHLO ${this.#helo}${CRLF}`));
        this.#state = 'ehlo';
        return out;
      case 'ehlo':
        if (reply.code !== 250) return this.#end(out, { kind: 'reply', phase: 'ehlo', reply }, true);
        // STARTTLS even when not advertised (some intakes hide it): a refusal ends the connection.
        out.write.push(b(`STARTTLS${CRLF}`));
        this.#state = 'starttls';
        return out;
      case 'starttls':
        if (reply.code !== 220) return this.#end(out, { kind: 'reply', phase: 'starttls', reply }, true);
        this.#state = 'tls';
        out.actions.push({ type: 'start_tls' });
        return out;
      case 'ehlo_tls':
        if (reply.code !== 250) return this.#end(out, { kind: 'reply', phase: 'ehlo', reply }, true);
        this.#caps = parseEhlo(reply);
        this.#state = 'ready';
        out.actions.push({ type: 'ready' });
        return out;
      case 'transaction':
        return this.#transactionReply(out, reply);
      case 'rset':
        if (reply.code !== 250) return this.#end(out, { kind: 'reply', phase: 'rset', reply }, true);
        this.#state = 'ready';
        out.actions.push({ type: 'ready' });
        return out;
      case 'quit':
        this.#state = 'closed';
        out.actions.push({ type: 'close' });
        return out;
      case 'tls': case 'ready': case 'closed':
        return this.protocolError(new SmtpProtocolError('SMTP_UNEXPECTED_REPLY', `unexpected reply ${reply.code} while ${s}`));
    }
  }

  /** The TLS handshake succeeded: EHLO again, forgetting what was offered in plaintext. */
  tlsUp(): SessionOutput {
    if (this.#state !== 'tls') return { write: [], actions: [] };
    this.#caps = undefined;
    this.#state = 'ehlo_tls';
    return { write: [b(`EHLO ${this.#helo}${CRLF}`)], actions: [] };
  }

  tlsFailed(message: string, code?: string): SessionOutput {
    const f: SmtpFailure = { kind: 'tls', phase: 'tls', message };
    if (code !== undefined) f.code = code;
    return this.#end({ write: [], actions: [] }, f);
  }

  /** Send one copy. Only in 'ready'; a copy the server cannot take fails at once and nothing is sent. */
  start(t: SmtpTransaction): SessionOutput {
    const out: SessionOutput = { write: [], actions: [] };
    if (this.#state !== 'ready' || !this.#caps) throw new Error(`SMTP session: start() while ${this.#state}`);
    const caps = this.#caps;
    const bdat = t.body === 'binary' && caps.chunking && caps.binaryMime;
    if (t.body !== '7bit' && !bdat && !caps.eightBitMime) {
      out.actions.push({ type: 'transaction_done', result: { ok: false, failure: { kind: 'no_8bitmime', phase: 'mail', body: t.body } } }, { type: 'ready' });
      return out;
    }
    if (caps.size !== undefined && caps.size > 0 && t.bytes > caps.size) {
      out.actions.push({ type: 'transaction_done', result: { ok: false, failure: { kind: 'size', phase: 'mail', limit: caps.size, bytes: t.bytes } } }, { type: 'ready' });
      return out;
    }
    let params = '';
    if (bdat) params += ' BODY=BINARYMIME';
    else if (t.body !== '7bit') params += ' BODY=8BITMIME';
    if (caps.size !== undefined) params += ` SIZE=${t.bytes}`;
    const txn: Txn = { t, bdat, expect: [], pipelined: caps.pipelining };
    this.#txn = txn;
    this.#state = 'transaction';
    const mail = `MAIL FROM:<>${params}${CRLF}`;
    const rcpt = `RCPT TO:<${t.recipient}>${CRLF}`;
    if (caps.pipelining) {
      // RFC 2920: MAIL, RCPT and DATA in one group; every reply is still read, in order.
      txn.expect = bdat ? ['mail', 'rcpt'] : ['mail', 'rcpt', 'data'];
      out.write.push(b(bdat ? mail + rcpt : `${mail}${rcpt}DATA${CRLF}`));
    } else {
      txn.expect = ['mail'];
      out.write.push(b(mail));
    }
    return out;
  }

  /** End the connection politely: QUIT when idle, else just close. */
  quit(): SessionOutput {
    const out: SessionOutput = { write: [], actions: [] };
    if (this.#state === 'ready') {
      this.#state = 'quit';
      out.write.push(b(`QUIT${CRLF}`));
      return out;
    }
    if (this.#state === 'quit' || this.#state === 'closed') return out;
    return this.#end(out, { kind: 'aborted', phase: this.phase, message: 'closed by us' });
  }

  /** The socket closed (or failed) under us. */
  closed(message = 'connection closed by the server', code?: string): SessionOutput {
    if (this.#state === 'closed') return { write: [], actions: [] };
    if (this.#state === 'quit' || (this.#state === 'ready' && code === undefined)) {
      // An idle connection the server closed, or the end of our QUIT: nobody's copy is affected.
      this.#state = 'closed';
      return { write: [], actions: [{ type: 'close' }] };
    }
    const f: SmtpFailure = { kind: 'network', phase: this.phase, message };
    if (code !== undefined) f.code = code;
    return this.#end({ write: [], actions: [] }, f);
  }

  /** A reply (or the body's progress) did not come in time. */
  timeout(message: string): SessionOutput {
    if (this.#state === 'closed') return { write: [], actions: [] };
    if (this.#state === 'quit') return this.closed();
    return this.#end({ write: [], actions: [] }, { kind: 'timeout', phase: this.phase, message });
  }

  /** The reply stream did not parse, or came when none was due. */
  protocolError(error: SmtpProtocolError): SessionOutput {
    if (this.#state === 'closed') return { write: [], actions: [] };
    return this.#end({ write: [], actions: [] }, { kind: 'protocol', phase: this.phase, error });
  }

  /** We abort: the transaction (if any) fails with `aborted` and the connection closes. */
  abort(message: string): SessionOutput {
    if (this.#state === 'closed') return { write: [], actions: [] };
    return this.#end({ write: [], actions: [] }, { kind: 'aborted', phase: this.phase, message });
  }

  #transactionReply(out: SessionOutput, reply: SmtpReply): SessionOutput {
    const txn = this.#txn!;
    const step = txn.expect.shift();
    if (step === undefined) {
      return this.protocolError(new SmtpProtocolError('SMTP_UNEXPECTED_REPLY', `unexpected reply ${reply.code} in a transaction`));
    }
    const fail = (phase: SmtpPhase): void => {
      txn.failure ??= { kind: 'reply', phase, reply };
    };
    switch (step) {
      case 'mail':
        if (reply.code !== 250) fail('mail');
        else if (!txn.pipelined && !txn.failure) {
          txn.expect.push('rcpt');
          out.write.push(b(`RCPT TO:<${txn.t.recipient}>${CRLF}`));
        }
        break;
      case 'rcpt':
        if (reply.code !== 250 && reply.code !== 251) fail('rcpt');
        else if (!txn.failure) {
          if (txn.bdat) {
            // BDAT only once the envelope is accepted: a refused BDAT's bytes could not be taken back.
            txn.expect.push('message');
            out.write.push(b(`BDAT ${txn.t.bytes} LAST${CRLF}`), ...pieces(txn.t.raw));
          } else if (!txn.pipelined) {
            txn.expect.push('data');
            out.write.push(b(`DATA${CRLF}`));
          }
        }
        break;
      case 'data':
        if (reply.code !== 354) {
          fail('data');
        } else if (txn.failure) {
          // DATA accepted although MAIL or RCPT failed (pipelined): end an empty message, ignore its reply.
          txn.expect.push('discard');
          out.write.push(b(`.${CRLF}`));
        } else {
          txn.expect.push('message');
          out.write.push(...stuffed(txn.t.raw));
        }
        break;
      case 'message':
        if (reply.code !== 250) fail('message');
        break;
      case 'discard':
        break;
    }
    if (txn.expect.length > 0) return out;
    this.#txn = undefined;
    if (!txn.failure) {
      this.#state = 'ready';
      out.actions.push({ type: 'transaction_done', result: { ok: true, reply } }, { type: 'ready' });
      return out;
    }
    out.actions.push({ type: 'transaction_done', result: { ok: false, failure: txn.failure } });
    this.#state = 'rset';
    out.write.push(b(`RSET${CRLF}`));
    return out;
  }

  /** The connection is over: a transaction in flight fails with `failure`, then close (QUIT first if asked). */
  #end(out: SessionOutput, failure: SmtpFailure, sayQuit = false): SessionOutput {
    if (this.#txn) {
      out.actions.push({ type: 'transaction_done', result: { ok: false, failure } });
      this.#txn = undefined;
    }
    if (sayQuit) out.write.push(b(`QUIT${CRLF}`));
    this.#state = 'closed';
    out.actions.push({ type: 'close', failure });
    return out;
  }
}

function pieces(raw: Buffer | readonly Buffer[]): Buffer[] {
  return Buffer.isBuffer(raw) ? [raw] : raw.filter((p) => p.length > 0);
}

/** The body as it goes after DATA: dot-stuffed piece by piece, then the end-of-data line. */
function stuffed(raw: Buffer | readonly Buffer[]): Buffer[] {
  const out: Buffer[] = [];
  let last = START_OF_DATA;
  for (const p of pieces(raw)) {
    out.push(dotStuff(p, last));
    last = p[p.length - 1]!;
  }
  out.push(endOfData(last));
  return out;
}
