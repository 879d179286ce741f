/**
 * One milter connection's state machine without sockets: bytes in, reply bytes and a close flag out.
 * A closed state union checked against a transition table, libmilter macro scoping, message capture;
 * at end of body a MilterMessage (the neutral CapturedMessage plus its macros) goes to `onMessage` and the MTA always gets SMFIR_CONTINUE.
 * Imports util, message and milter codecs only; must not import policy, config, journal, forwarder.
 */
import type { Logger } from '../util/logger';
import { describeError } from '../util/errors';
import { unbracket, type ClientInfo, type HeaderField, type SmtpAddress } from '../message';
import * as C from './codes';
import { macroKey, mtaFacts, type MilterMessage } from './mta-facts';
import { decodeCommand, type MilterCommand, type MilterCommandKind } from './command-decoder';
import { MilterProtocolError } from './errors';
import { FrameDecodeError, FrameDecoder, type Frame } from './frame-decoder';
import { expectsReply, negotiate, JOURNAL_WANTS, type Negotiated, type NegotiationWants } from './negotiation';
import { encodeOptnegReply, joinReplies, REPLY_CONTINUE } from './reply-encoder';

export type SessionState =
  | 'awaiting_optneg' // nothing received yet
  | 'negotiated' // OPTNEG answered, no CONNECT yet (again after QUIT_NC)
  | 'idle' // connected, outside a transaction
  | 'envelope' // after MAIL: recipients
  | 'headers' // after DATA or the first header
  | 'body' // after EOH or the first body chunk
  | 'closed';

const SAME = 0;
type Next = SessionState | typeof SAME;

/** Legal commands per state and where they lead. Anything missing is a protocol error. */
const TRANSITIONS: Readonly<Record<SessionState, Partial<Record<MilterCommandKind, Next>>>> = {
  awaiting_optneg: { optneg: 'negotiated', quit: 'closed' },
  negotiated: {
    macro: SAME, connect: 'idle', helo: 'idle', mail: 'envelope', unknown: SAME, abort: SAME,
    quit: 'closed', quit_nc: 'negotiated',
  },
  idle: { macro: SAME, helo: 'idle', mail: 'envelope', unknown: SAME, abort: SAME, quit: 'closed', quit_nc: 'negotiated' },
  envelope: {
    macro: SAME, rcpt: 'envelope', data: 'headers', header: 'headers', eoh: 'body', body: 'body', eob: 'idle',
    mail: 'envelope', helo: 'idle', unknown: SAME, abort: 'idle', quit: 'closed', quit_nc: 'negotiated',
  },
  headers: {
    macro: SAME, header: 'headers', eoh: 'body', body: 'body', eob: 'idle',
    mail: 'envelope', helo: 'idle', unknown: SAME, abort: 'idle', quit: 'closed', quit_nc: 'negotiated',
  },
  body: {
    macro: SAME, body: 'body', eob: 'idle',
    mail: 'envelope', helo: 'idle', unknown: SAME, abort: 'idle', quit: 'closed', quit_nc: 'negotiated',
  },
  closed: {},
};

const IN_TRANSACTION: ReadonlySet<SessionState> = new Set<SessionState>(['envelope', 'headers', 'body']);

// Macro slots, numbered like SMFIM_* (EOM 5 before EOH 6).
const SLOT_COUNT = 7;
const MACRO_SLOT: Readonly<Record<number, number>> = {
  [C.SMFIC_CONNECT]: C.SMFIM_CONNECT,
  [C.SMFIC_HELO]: C.SMFIM_HELO,
  [C.SMFIC_MAIL]: C.SMFIM_ENVFROM,
  [C.SMFIC_RCPT]: C.SMFIM_ENVRCPT,
  [C.SMFIC_DATA]: C.SMFIM_DATA,
  [C.SMFIC_HEADER]: C.SMFIM_EOH,
  [C.SMFIC_EOH]: C.SMFIM_EOH,
  [C.SMFIC_BODY]: C.SMFIM_EOM,
  [C.SMFIC_BODYEOB]: C.SMFIM_EOM,
};
/** Later stages override earlier ones when macros are merged for a message. */
const MERGE_ORDER = [C.SMFIM_CONNECT, C.SMFIM_HELO, C.SMFIM_ENVFROM, C.SMFIM_ENVRCPT, C.SMFIM_DATA, C.SMFIM_EOH, C.SMFIM_EOM];

type MacroPairs = ReadonlyArray<readonly [string, string]>;

interface Transaction {
  sender: SmtpAddress;
  recipients: SmtpAddress[];
  headers: HeaderField[];
  body: Buffer[];
  bodyBytes: number;
  keptBytes: number;
  oversized: boolean;
}

/** Counters shared by every session of one server. */
export interface SessionCounters {
  messages: number;
  protocolErrors: number;
}

export interface SessionOptions {
  /** Connection id for log lines. */
  id: string;
  logger: Logger;
  onMessage: (msg: MilterMessage) => void;
  maxPacketBytes?: number;
  maxMessageBytes?: number;
  wants?: NegotiationWants;
  counters?: SessionCounters;
}

export interface SessionOutput {
  /** Bytes to write to the MTA in one write (every reply this read produced), if any. */
  reply: Buffer | undefined;
  /** Close the connection after writing `reply` (QUIT, or a protocol error). */
  close: boolean;
  /** Set when the connection ends because of a protocol error (already logged). */
  error?: MilterProtocolError;
}

const NOTHING: SessionOutput = Object.freeze({ reply: undefined, close: false });
const CLOSED: SessionOutput = Object.freeze({ reply: undefined, close: true });

export class MilterSession {
  readonly id: string;
  readonly #log: Logger;
  readonly #onMessage: (msg: MilterMessage) => void;
  readonly #maxMessageBytes: number | undefined;
  readonly #wants: NegotiationWants;
  readonly #counters: SessionCounters;
  readonly #decoder: FrameDecoder;
  #state: SessionState = 'awaiting_optneg';
  #negotiated: Negotiated | undefined;
  /** replyNeeded[code] = 1 when that command gets a SMFIR_CONTINUE from us. */
  readonly #replyNeeded = new Uint8Array(128);
  readonly #macros: Array<MacroPairs | undefined> = new Array<MacroPairs | undefined>(SLOT_COUNT);
  #client: ClientInfo | undefined;
  #helo: string | undefined;
  #tx: Transaction | undefined;

  constructor(options: SessionOptions) {
    this.id = options.id;
    this.#log = options.logger;
    this.#onMessage = options.onMessage;
    this.#maxMessageBytes = options.maxMessageBytes;
    this.#wants = options.wants ?? JOURNAL_WANTS;
    this.#counters = options.counters ?? { messages: 0, protocolErrors: 0 };
    this.#decoder = new FrameDecoder(options.maxPacketBytes, { streamBody: true });
  }

  get state(): SessionState {
    return this.#state;
  }

  get negotiated(): Negotiated | undefined {
    return this.#negotiated;
  }

  /** Feed one read from the socket. Never throws for anything the peer sends. */
  receive(chunk: Buffer): SessionOutput {
    if (this.#isClosed()) return CLOSED;
    let frames: Frame[];
    let frameError: FrameDecodeError | undefined;
    try {
      frames = this.#decoder.push(chunk);
    } catch (err) {
      if (!(err instanceof FrameDecodeError)) throw err;
      frames = err.frames;
      frameError = err;
    }
    const replies: Buffer[] = [];
    for (let i = 0; i < frames.length && !this.#isClosed(); i++) {
      try {
        this.#handle(frames[i]!, replies);
      } catch (err) {
        if (err instanceof MilterProtocolError) return this.#protocolError(err, replies);
        throw err;
      }
    }
    if (frameError !== undefined && !this.#isClosed()) return this.#protocolError(frameError, replies);
    const close = this.#isClosed();
    if (replies.length === 0) return close ? CLOSED : NOTHING;
    return { reply: joinReplies(replies), close };
  }

  #isClosed(): boolean {
    return this.#state === 'closed';
  }

  /** The socket ended or failed: drop any transaction (as ABORT would) and close. */
  end(reason: string): void {
    if (this.#state === 'closed') return;
    const pending = this.#decoder.pendingBytes;
    if (pending > 0) {
      this.#counters.protocolErrors++;
      this.#log.warn(`milter connection ${this.id}: ${reason} inside a packet (${pending} bytes of an incomplete packet); closing this connection`);
    }
    if (this.#tx !== undefined && IN_TRANSACTION.has(this.#state)) {
      this.#log.debug(`milter connection ${this.id}: ${reason} during a transaction (MAIL FROM:<${this.#tx.sender.address}>); transaction dropped`);
    }
    this.#tx = undefined;
    this.#state = 'closed';
  }

  #protocolError(err: MilterProtocolError, replies: Buffer[]): SessionOutput {
    const state = this.#state;
    this.#state = 'closed';
    this.#tx = undefined;
    this.#counters.protocolErrors++;
    this.#log.warn(`milter connection ${this.id}: protocol error (${err.code}) in state ${state}: ${err.message}; closing this connection`);
    return { reply: joinReplies(replies), close: true, error: err };
  }

  #handle(frame: Frame, replies: Buffer[]): void {
    if (frame.partial === true) {
      // A piece of a body frame the next read continues: body bytes now, the command (and any reply) with its last piece.
      if (TRANSITIONS[this.#state].body === undefined) throw new MilterProtocolError('MILTER_SEQUENCE', illegal(this.#state, 'body', frame.code));
      this.#state = 'body';
      this.#bodyChunk(frame.payload);
      return;
    }
    const cmd = decodeCommand(frame);
    const next = TRANSITIONS[this.#state][cmd.kind];
    if (next === undefined) throw new MilterProtocolError('MILTER_SEQUENCE', illegal(this.#state, cmd.kind, frame.code));
    switch (cmd.kind) {
      case 'macro': {
        const slot = MACRO_SLOT[cmd.forCode];
        if (slot !== undefined) this.#macros[slot] = cmd.pairs;
        break;
      }
      case 'body':
        this.#bodyChunk(cmd.chunk);
        break;
      case 'header':
        this.#tx!.headers.push({ name: cmd.name, value: cmd.value });
        break;
      case 'rcpt':
        this.#clearMacros(C.SMFIM_DATA);
        this.#tx!.recipients.push(address(cmd.args));
        break;
      case 'mail':
        if (IN_TRANSACTION.has(this.#state)) this.#implicitAbort('SMFIC_MAIL');
        this.#clearMacros(C.SMFIM_ENVRCPT);
        this.#tx = { sender: address(cmd.args), recipients: [], headers: [], body: [], bodyBytes: 0, keptBytes: 0, oversized: false };
        break;
      case 'eob':
        if (cmd.chunk !== undefined) this.#bodyChunk(cmd.chunk);
        this.#endOfMessage();
        replies.push(REPLY_CONTINUE);
        this.#state = 'idle';
        return;
      case 'abort':
        this.#tx = undefined;
        this.#clearMacros(C.SMFIM_ENVFROM);
        break;
      case 'connect':
        this.#clearMacros(C.SMFIM_HELO);
        this.#client = clientInfo(cmd);
        break;
      case 'helo':
        if (IN_TRANSACTION.has(this.#state)) this.#implicitAbort('SMFIC_HELO');
        this.#tx = undefined;
        this.#clearMacros(C.SMFIM_ENVFROM);
        this.#helo = cmd.name;
        break;
      case 'data':
      case 'eoh':
      case 'unknown':
        break;
      case 'optneg':
        this.#negotiate(cmd, replies);
        this.#state = 'negotiated';
        return;
      case 'quit':
        this.#tx = undefined;
        this.#state = 'closed';
        return;
      case 'quit_nc':
        this.#tx = undefined;
        this.#client = undefined;
        this.#helo = undefined;
        this.#clearMacros(C.SMFIM_CONNECT);
        break;
    }
    if (next !== SAME) this.#state = next;
    if (this.#replyNeeded[frame.code] === 1) replies.push(REPLY_CONTINUE);
  }

  #negotiate(cmd: Extract<MilterCommand, { kind: 'optneg' }>, replies: Buffer[]): void {
    const n = negotiate(cmd, this.#wants);
    this.#negotiated = n;
    for (const code of [C.SMFIC_CONNECT, C.SMFIC_HELO, C.SMFIC_MAIL, C.SMFIC_RCPT, C.SMFIC_DATA,
      C.SMFIC_UNKNOWN, C.SMFIC_HEADER, C.SMFIC_EOH, C.SMFIC_BODY]) {
      this.#replyNeeded[code] = expectsReply(n.protocol, code) ? 1 : 0;
    }
    replies.push(encodeOptnegReply(n.version, n.actions, n.protocol, n.macroLists));
    this.#log.debug(
      `milter connection ${this.id}: MTA offers version ${cmd.version}, actions ${C.hex32(cmd.actions)}, protocol ${C.hex32(cmd.protocol)}; ` +
        `we use version ${n.version}, actions ${C.hex32(n.actions)}, protocol ${C.hex32(n.protocol)}${n.macroLists.length > 0 ? ', with macro lists' : ''}`,
    );
  }

  #bodyChunk(chunk: Buffer): void {
    const tx = this.#tx!;
    tx.bodyBytes += chunk.length;
    if (tx.oversized || chunk.length === 0) return;
    if (this.#maxMessageBytes !== undefined && tx.keptBytes + chunk.length > this.#maxMessageBytes) {
      tx.oversized = true; // keep nothing more, so `body` stays a prefix of the message
      return;
    }
    tx.body.push(chunk);
    tx.keptBytes += chunk.length;
  }

  #endOfMessage(): void {
    const tx = this.#tx!;
    this.#tx = undefined;
    const macros = new Map<string, string>();
    for (const slot of MERGE_ORDER) {
      const pairs = this.#macros[slot];
      if (pairs === undefined) continue;
      for (const [name, value] of pairs) if (name !== '') macros.set(macroKey(name), value);
    }
    const msg: MilterMessage = {
      ...mtaFacts(macros, this.#client),
      client: this.#client,
      helo: this.#helo,
      macros,
      sender: tx.sender,
      recipients: tx.recipients,
      headers: tx.headers,
      headerValuesExact: this.#negotiated?.headerLeadingSpace ?? false,
      body: tx.body,
      bodyBytes: tx.bodyBytes,
      oversized: tx.oversized,
    };
    if (this.#negotiated?.withoutContent === true) msg.withoutContent = true;
    this.#counters.messages++;
    this.#clearMacros(C.SMFIM_ENVFROM);
    try {
      this.#onMessage(msg);
    } catch (err) {
      this.#log.error(
        `milter connection ${this.id}: end-of-message handler failed for ${msg.queueId || 'a message without queue id'}: ${describeError(err)}; the message goes on`,
      );
    }
  }

  #implicitAbort(what: string): void {
    this.#log.debug(`milter connection ${this.id}: ${what} inside a transaction without SMFIC_ABORT; previous transaction dropped`);
  }

  /** Forget macros of `fromSlot` and every later stage (libmilter's scoping). */
  #clearMacros(fromSlot: number): void {
    for (let s = fromSlot; s < SLOT_COUNT; s++) this.#macros[s] = undefined;
  }
}

function address(args: string[]): SmtpAddress {
  return { address: unbracket(args[0] ?? ''), args: args.slice(1) };
}

function clientInfo(cmd: Extract<MilterCommand, { kind: 'connect' }>): ClientInfo {
  const info: ClientInfo = { hostname: cmd.hostname, family: cmd.family };
  if (cmd.address !== undefined) info.address = cmd.address;
  if (cmd.port !== undefined) info.port = cmd.port;
  return info;
}

const WHERE: Record<SessionState, string> = {
  awaiting_optneg: 'before SMFIC_OPTNEG',
  negotiated: 'outside a transaction (no SMFIC_MAIL before it)',
  idle: 'outside a transaction (no SMFIC_MAIL before it)',
  envelope: 'in the envelope',
  headers: 'after the message headers started',
  body: 'after the end of the headers',
  closed: 'after the connection closed',
};

function illegal(state: SessionState, kind: MilterCommandKind, code: number): string {
  const name = C.commandName(code);
  if (kind === 'optneg') return `a second ${name}`;
  if (kind === 'connect' && state !== 'awaiting_optneg') return `a second ${name}`;
  return `${name} ${WHERE[state]}`;
}
