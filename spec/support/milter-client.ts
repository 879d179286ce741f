/**
 * A small MTA-side milter client for byte-exact tests and the benchmark: connects to a milter,
 * negotiates with a configurable offer, sends every command with its own encoder (independent of
 * lib/milter's decoder), and matches replies in order, honouring the NR_* flags the milter chose.
 * Imports node:net and lib/milter's frame decoder (framing is the same in both directions).
 */
import * as net from 'node:net';
import { FrameDecoder } from '../../lib/milter/frame-decoder';

export interface Offer {
  version: number;
  actions: number;
  protocol: number;
}

/** What Postfix 3.7 and Sendmail 8.17 offer by default. */
export const POSTFIX_OFFER: Offer = { version: 6, actions: 0x1ff, protocol: 0x1fffff };
export const SENDMAIL_OFFER: Offer = { version: 6, actions: 0x1ff, protocol: 0x1fffff };
/** Postfix with `milter_protocol = 2` (the action mask is not reduced). */
export const POSTFIX_V2_OFFER: Offer = { version: 2, actions: 0x1ff, protocol: 0x7f };

export interface Reply {
  /** Reply byte, e.g. 0x63. */
  code: number;
  /** Reply byte as a character, e.g. 'c'. */
  char: string;
  payload: Buffer;
}

export interface NegotiationReply {
  version: number;
  actions: number;
  protocol: number;
  /** stage -> space-separated macro names */
  macroLists: Map<number, string>;
  raw: Buffer;
}

export type ConnectFamily = '4' | '6' | 'L' | 'U';

const NR_BITS: Record<string, number> = {
  C: 0x1000, H: 0x2000, M: 0x4000, R: 0x8000, T: 0x10000, U: 0x20000, L: 0x80, N: 0x40000, B: 0x80000,
};
/** Replies that end the EOB exchange (anything else is a modification or progress). */
const FINAL = new Set(['c', 'a', 'r', 't', 'd', 'y']);

interface Waiter {
  what: string;
  eob: boolean;
  collected: Reply[];
  resolve: (r: Reply[]) => void;
  reject: (e: Error) => void;
  timer: NodeJS.Timeout;
}

function u32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n >>> 0, 0);
  return b;
}

function cstr(s: string | Buffer): Buffer {
  const b = typeof s === 'string' ? Buffer.from(s, 'latin1') : s;
  return Buffer.concat([b, Buffer.from([0])]);
}

/** One packet, MTA->milter: u32 len, code, payload. */
export function packet(code: string, ...parts: Buffer[]): Buffer {
  const payload = Buffer.concat(parts);
  return Buffer.concat([u32(payload.length + 1), Buffer.from(code, 'latin1'), payload]);
}

export function optnegPacket(offer: Offer): Buffer {
  return packet('O', u32(offer.version), u32(offer.actions), u32(offer.protocol));
}

export function macroPacket(forCode: string, pairs: Record<string, string> | Array<[string, string]>): Buffer {
  const list = Array.isArray(pairs) ? pairs : Object.entries(pairs);
  return packet('D', Buffer.from(forCode, 'latin1'), ...list.flatMap(([k, v]) => [cstr(k), cstr(v)]));
}

export function connectPacket(hostname: string, family: ConnectFamily, port = 0, address = ''): Buffer {
  if (family === 'U') return packet('C', cstr(hostname), Buffer.from('U'));
  const p = Buffer.alloc(2);
  p.writeUInt16BE(port, 0);
  return packet('C', cstr(hostname), Buffer.from(family, 'latin1'), p, cstr(address));
}

export function headerPacket(name: string, value: string): Buffer {
  return packet('L', cstr(name), cstr(value));
}

export function argvPacket(code: 'M' | 'R', args: string[]): Buffer {
  return packet(code, ...args.map(cstr));
}

export interface ClientOptions {
  /** How long to wait for a reply before failing (ms). Default 5000. */
  replyTimeoutMs?: number;
}

export class MilterClient {
  readonly socket: net.Socket;
  /** Every reply received, in order. */
  readonly replies: Reply[] = [];
  /** Replies that arrived while no reply was awaited (a desync). */
  readonly unexpected: Reply[] = [];
  /** Negotiation answers that break the rules (reply flags not a subset of the offer...). */
  readonly violations: string[] = [];
  negotiated: NegotiationReply | undefined;
  #offer: Offer | undefined;
  readonly #decoder = new FrameDecoder(64 * 1024 * 1024);
  readonly #waiters: Waiter[] = [];
  readonly #timeoutMs: number;
  #closed = false;
  readonly #closedPromise: Promise<void>;

  private constructor(socket: net.Socket, options: ClientOptions) {
    this.socket = socket;
    this.#timeoutMs = options.replyTimeoutMs ?? 5000;
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => this.#onData(chunk));
    socket.on('error', () => { /* surfaced through close */ });
    this.#closedPromise = new Promise((resolve) => {
      socket.on('close', () => {
        this.#closed = true;
        for (const w of this.#waiters.splice(0)) {
          clearTimeout(w.timer);
          w.reject(new Error(`milter closed the connection while we waited for the reply to ${w.what}`));
        }
        resolve();
      });
    });
  }

  static connect(target: { port: number; host?: string } | { path: string }, options: ClientOptions = {}): Promise<MilterClient> {
    return new Promise((resolve, reject) => {
      const socket = 'path' in target ? net.connect({ path: target.path }) : net.connect({ port: target.port, host: target.host ?? '127.0.0.1' });
      socket.once('error', reject);
      socket.once('connect', () => {
        socket.off('error', reject);
        resolve(new MilterClient(socket, options));
      });
    });
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** Resolves when the milter (or we) closed the connection. */
  waitClosed(): Promise<void> {
    return this.#closedPromise;
  }

  /** Does the milter answer this command, given what it negotiated? */
  needsReply(code: string): boolean {
    const bit = NR_BITS[code];
    if (bit === undefined) return code === 'E' || code === 'O';
    return this.negotiated === undefined || (this.negotiated.protocol & bit) === 0;
  }

  async negotiate(offer: Offer = POSTFIX_OFFER): Promise<NegotiationReply> {
    this.#offer = offer;
    const [r] = await this.#send(optnegPacket(offer), 'SMFIC_OPTNEG', 'single');
    const reply = r!;
    if (reply.char !== 'O') throw new Error(`expected an OPTNEG reply, got '${reply.char}'`);
    const p = reply.payload;
    if (p.length < 12) throw new Error(`OPTNEG reply of ${p.length} bytes`);
    const macroLists = new Map<number, string>();
    let off = 12;
    while (off < p.length) {
      const stage = p.readUInt32BE(off);
      const nul = p.indexOf(0, off + 4);
      if (nul < 0) throw new Error('macro list not NUL-terminated');
      macroLists.set(stage, p.toString('latin1', off + 4, nul));
      off = nul + 1;
    }
    const n: NegotiationReply = {
      version: p.readUInt32BE(0), actions: p.readUInt32BE(4), protocol: p.readUInt32BE(8), macroLists,
      raw: Buffer.concat([u32(p.length + 1), Buffer.from('O'), p]),
    };
    const offeredActions = offer.actions === 0 ? 0x0f : offer.actions;
    const offeredProtocol = offer.protocol === 0 ? 0x3f : offer.protocol;
    if (n.version > offer.version) this.violations.push(`version ${n.version} above the offered ${offer.version}`);
    if ((n.actions & ~offeredActions) !== 0) this.violations.push(`actions 0x${n.actions.toString(16)} not within the offer 0x${offeredActions.toString(16)}`);
    if ((n.protocol & ~offeredProtocol) !== 0) this.violations.push(`protocol 0x${n.protocol.toString(16)} not within the offer 0x${offeredProtocol.toString(16)}`);
    if (macroLists.size > 0 && (n.actions & 0x100) === 0) this.violations.push('macro lists without SMFIF_SETSYMLIST');
    this.negotiated = n;
    return n;
  }

  get offer(): Offer | undefined {
    return this.#offer;
  }

  macro(forCode: string, pairs: Record<string, string> | Array<[string, string]> = []): void {
    this.sendBytes(macroPacket(forCode, pairs));
  }

  connectInfo(hostname: string, family: ConnectFamily, port = 0, address = ''): Promise<Reply | undefined> {
    return this.#command('C', connectPacket(hostname, family, port, address), 'SMFIC_CONNECT');
  }

  helo(name: string): Promise<Reply | undefined> {
    return this.#command('H', packet('H', cstr(name)), 'SMFIC_HELO');
  }

  mail(...args: string[]): Promise<Reply | undefined> {
    return this.#command('M', argvPacket('M', args), 'SMFIC_MAIL');
  }

  rcpt(...args: string[]): Promise<Reply | undefined> {
    return this.#command('R', argvPacket('R', args), 'SMFIC_RCPT');
  }

  data(): Promise<Reply | undefined> {
    return this.#command('T', packet('T'), 'SMFIC_DATA');
  }

  header(name: string, value: string): Promise<Reply | undefined> {
    return this.#command('L', headerPacket(name, value), 'SMFIC_HEADER');
  }

  eoh(): Promise<Reply | undefined> {
    return this.#command('N', packet('N'), 'SMFIC_EOH');
  }

  /** One SMFIC_BODY packet per call (split large bodies yourself, e.g. with bodyChunks). */
  body(chunk: Buffer | string): Promise<Reply | undefined> {
    const b = typeof chunk === 'string' ? Buffer.from(chunk, 'latin1') : chunk;
    return this.#command('B', packet('B', b), 'SMFIC_BODY');
  }

  unknown(line: string): Promise<Reply | undefined> {
    return this.#command('U', packet('U', cstr(line)), 'SMFIC_UNKNOWN');
  }

  /** End of body: resolves with every reply up to and including the final verdict. */
  async eob(): Promise<Reply[]> {
    return this.#send(packet('E'), 'SMFIC_BODYEOB', 'eob');
  }

  abort(): void {
    this.sendBytes(packet('A'));
  }

  quit(): void {
    this.sendBytes(packet('Q'));
  }

  quitNc(): void {
    this.sendBytes(packet('K'));
  }

  /** Raw bytes, for malformed input. */
  sendBytes(bytes: Buffer): void {
    this.socket.write(bytes);
  }

  /** Send everything `fn` writes in one TCP write (as Postfix does). */
  batch(fn: () => void): void {
    this.socket.cork();
    try {
      fn();
    } finally {
      this.socket.uncork();
    }
  }

  /** End our side and wait for the milter to close. */
  async end(): Promise<void> {
    this.socket.end();
    await this.#closedPromise;
  }

  destroy(): void {
    this.socket.destroy();
  }

  async #command(code: string, bytes: Buffer, what: string): Promise<Reply | undefined> {
    if (!this.needsReply(code)) {
      this.sendBytes(bytes);
      return undefined;
    }
    const [r] = await this.#send(bytes, what, 'single');
    return r;
  }

  #send(bytes: Buffer, what: string, kind: 'single' | 'eob'): Promise<Reply[]> {
    return new Promise((resolve, reject) => {
      if (this.#closed) {
        reject(new Error(`connection closed before ${what}`));
        return;
      }
      const timer = setTimeout(() => {
        const i = this.#waiters.indexOf(w);
        if (i >= 0) this.#waiters.splice(i, 1);
        reject(new Error(`no reply to ${what} within ${this.#timeoutMs} ms`));
      }, this.#timeoutMs);
      const w: Waiter = { what, eob: kind === 'eob', collected: [], resolve, reject, timer };
      this.#waiters.push(w);
      this.sendBytes(bytes);
    });
  }

  #onData(chunk: Buffer): void {
    let frames;
    try {
      frames = this.#decoder.push(chunk);
    } catch (err) {
      this.violations.push(`bad reply framing: ${(err as Error).message}`);
      this.socket.destroy();
      return;
    }
    for (const f of frames) {
      const reply: Reply = { code: f.code, char: String.fromCharCode(f.code), payload: Buffer.from(f.payload) };
      this.replies.push(reply);
      const w = this.#waiters[0];
      if (w === undefined) {
        this.unexpected.push(reply);
        continue;
      }
      w.collected.push(reply);
      if (w.eob && !FINAL.has(reply.char)) continue;
      this.#waiters.shift();
      clearTimeout(w.timer);
      w.resolve(w.collected);
    }
  }
}

/** Split a body into chunks of at most `size` bytes (Postfix and Sendmail use 65535). */
export function bodyChunks(body: Buffer, size = 65535): Buffer[] {
  const out: Buffer[] = [];
  for (let off = 0; off < body.length; off += size) out.push(body.subarray(off, off + size));
  return out;
}
