/**
 * Incremental SMTP reply parser (RFC 5321 4.2): `push(bytes)` returns every complete reply, whatever
 * the split of the byte stream. Multi-line replies (`250-…` then `250 …`) come out as one reply; the
 * RFC 3463 enhanced status code of the first line is split off. Lines end in CRLF (a bare LF is
 * accepted too). Over-long lines and malformed replies are an SmtpProtocolError: thrown by push, returned
 * with the replies before them by pushUntilError. Pure: no sockets.
 * Imports only ./errors.
 */
import { SmtpProtocolError } from './errors';

export interface SmtpReply {
  /** The three-digit reply code, 200-599. */
  code: number;
  /** The enhanced status code ('2.0.0', '5.7.1') of the first line, when it has one. */
  enhanced?: string;
  /** The text of each line after the code and its separator (and after the enhanced code on the first). */
  lines: string[];
}

/** Longest reply line we accept, CRLF included. RFC 5321 says 512; real servers go a little over. */
export const MAX_REPLY_LINE = 2048;
/** Most lines in one reply (an EHLO reply has about 15). */
export const MAX_REPLY_LINES = 200;

const LF = 0x0a;
const ENHANCED_RE = /^([245]\.\d{1,3}\.\d{1,3})(?: |$)/;
const EMPTY = Buffer.alloc(0);

/** One reply as the server sent it, lines joined by ' / ' (for logs and DeliveryResult.reply). */
export function replyText(r: SmtpReply): string {
  return r.lines
    .map((text, i) => `${r.code} ${i === 0 && r.enhanced !== undefined ? (text === '' ? r.enhanced : `${r.enhanced} ${text}`) : text}`.trimEnd())
    .join(' / ');
}

export class ReplyParser {
  /** Bytes of an unfinished line. */
  #partial: Buffer = EMPTY;
  /** Lines of an unfinished multi-line reply. */
  #code = 0;
  #lines: string[] = [];

  /** Replies completed by these bytes; throws SmtpProtocolError on anything malformed. */
  push(bytes: Buffer): SmtpReply[] {
    const r = this.pushUntilError(bytes);
    if (r.error) throw r.error;
    return r.replies;
  }

  /**
   * Like push, but the replies completed before a malformed line come back with the error instead
   * of being lost with it (a 250 to a copy's data followed by garbage still means delivered).
   */
  pushUntilError(bytes: Buffer): { replies: SmtpReply[]; error?: SmtpProtocolError } {
    const replies: SmtpReply[] = [];
    try {
      this.#push(bytes, replies);
      return { replies };
    } catch (err) {
      if (!(err instanceof SmtpProtocolError)) throw err;
      return { replies, error: err };
    }
  }

  #push(bytes: Buffer, out: SmtpReply[]): void {
    let data = bytes;
    if (this.#partial.length > 0) {
      data = Buffer.concat([this.#partial, bytes]);
      this.#partial = EMPTY;
    }
    let from = 0;
    for (;;) {
      const lf = data.indexOf(LF, from);
      if (lf < 0) break;
      if (lf + 1 - from > MAX_REPLY_LINE) this.#tooLong();
      const end = lf > from && data[lf - 1] === 0x0d ? lf - 1 : lf;
      const reply = this.#line(data.toString('latin1', from, end));
      if (reply) out.push(reply);
      from = lf + 1;
    }
    if (from < data.length) {
      if (data.length - from >= MAX_REPLY_LINE) this.#tooLong();
      // Copy: the caller's buffer may be reused.
      this.#partial = Buffer.from(data.subarray(from));
    }
  }

  /** True while a reply is half received (a close now means a truncated reply). */
  get pending(): boolean {
    return this.#partial.length > 0 || this.#lines.length > 0;
  }

  #tooLong(): never {
    throw new SmtpProtocolError('SMTP_REPLY_TOO_LONG', `reply line longer than ${MAX_REPLY_LINE} bytes`);
  }

  #line(line: string): SmtpReply | undefined {
    const m = /^([2-5]\d\d)([ -]|$)/.exec(line);
    if (!m) {
      throw new SmtpProtocolError('SMTP_REPLY_MALFORMED', `malformed reply line ${JSON.stringify(line.slice(0, 80))}`);
    }
    const code = Number(m[1]);
    if (this.#lines.length > 0 && code !== this.#code) {
      throw new SmtpProtocolError('SMTP_REPLY_CODE_CHANGE', `reply code changed from ${this.#code} to ${code} within one reply`);
    }
    if (this.#lines.length >= MAX_REPLY_LINES) {
      throw new SmtpProtocolError('SMTP_REPLY_TOO_LONG', `reply with more than ${MAX_REPLY_LINES} lines`);
    }
    this.#code = code;
    this.#lines.push(line.slice(4));
    if (m[2] === '-') return undefined;
    const lines = this.#lines;
    this.#lines = [];
    const reply: SmtpReply = { code, lines };
    const e = ENHANCED_RE.exec(lines[0]!);
    // An enhanced code's class must agree with the reply's (RFC 3463); otherwise it is just text.
    if (e && e[1]!.charAt(0) === String(code).charAt(0)) {
      reply.enhanced = e[1]!;
      lines[0] = lines[0]!.slice(e[0].length);
    }
    return reply;
  }
}
