/**
 * The journal message: an envelope journal report per [MS-XJRNL] (a text/plain part with Sender,
 * On-Behalf-Of, Subject, Message-Id and Recipient lines) with the original attached as message/rfc822.
 * Deterministic given its input. Imports message and util only; never policy, milter or forwarder.
 */
import { createHash } from 'node:crypto';
import { isAscii } from 'node:buffer';
import { headerLine, type CapturedMessage } from '../message';
import { TdcError } from '../util/errors';
import { hasLongLine } from '../util/long-line';
import { cutUtf8, decodeHeaderText, encodedHeaderField, firstAddress, plainHeaderText, quotedPrintable } from './header-text';
import { headerField, MAX_LINE, singleLine, token } from './sanitize';

export interface JournalInput {
  message: CapturedMessage;
  intakeAddress: string;
  recipients: string[];
  policies: string[];
  hostname: string;
  date: Date;
  /** e.g. '4Xk2Lq0yZm.1'; characters outside [A-Za-z0-9._-] become '_'. */
  copyId: string;
  remoteIpHeader: string;
  /** `describeOriginal(message)`, when the caller already has it (it is the same for every copy). */
  original?: OriginalFacts;
}

/** What the bytes of a journal need from the SMTP server (JournalCopy.body). */
export type BodyType = '7bit' | '8bit' | 'binary';

/** Facts of the original that every copy of it shares. */
export interface OriginalFacts {
  /** 7bit: ASCII, lines within 998 octets; 8bit: 8-bit bytes; binary: a line over 998 octets. */
  body: BodyType;
}

/** Our marker header on every journal message (policy skips messages carrying it). */
export const JOURNAL_HEADER = 'X-TDC-Journal';

const DAYS = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'];
const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

/** Exchange's report values when the original has no address or no Message-ID ([MS-XJRNL] §2.1). */
export const UNSPECIFIED_ADDRESS = 'Unspecified Address';
export const UNKNOWN_MESSAGE_ID = 'Unknown Message-ID';

/** Prefix of the name an earlier remote_ip_header of the original is renamed to. */
export const RENAMED_PREFIX = 'X-TDC-Original-';

/** RFC 5322 date-time in UTC: `Mon, 23 Nov 2026 18:20:01 +0000`. */
export function rfc5322Date(d: Date): string {
  const p = (n: number) => String(n).padStart(2, '0');
  return `${DAYS[d.getUTCDay()]}, ${p(d.getUTCDate())} ${MONTHS[d.getUTCMonth()]} ${d.getUTCFullYear()} ` +
    `${p(d.getUTCHours())}:${p(d.getUTCMinutes())}:${p(d.getUTCSeconds())} +0000`;
}

/**
 * Whether `needle` occurs in the bytes of `parts` laid end to end, straddles included, without
 * joining them (the parts of a journal are megabytes).
 */
export function occursIn(parts: readonly Buffer[], needle: string): boolean {
  const n = Buffer.from(needle, 'latin1');
  const keep = n.length - 1;
  let tail: Buffer = Buffer.alloc(0); // the last `keep` bytes seen so far
  for (const p of parts) {
    if (p.indexOf(n) >= 0) return true;
    if (keep > 0 && tail.length > 0) {
      const seam = Buffer.concat([tail, p.subarray(0, keep)]);
      if (seam.indexOf(n) >= 0) return true;
    }
    if (keep > 0) tail = p.length >= keep ? p.subarray(p.length - keep) : Buffer.concat([tail, p]).subarray(-keep);
  }
  return false;
}

/** A boundary found nowhere in `parts` (laid end to end): `tdc-COPYID`, else hashed variants nobody can plant in advance. */
export function chooseBoundary(copyId: string, parts: readonly Buffer[]): string {
  const base = `tdc-${token(copyId, 40)}`;
  if (!occursIn(parts, base)) return base;
  const digest = createHash('sha256');
  for (const p of parts) digest.update(p);
  const d = digest.digest('hex');
  for (let k = 1; ; k++) {
    const b = `${base}-${createHash('sha256').update(`${k}:${d}`).digest('hex').slice(0, 16)}`;
    if (!occursIn(parts, b)) return b;
  }
}

function checkInput(input: JournalInput): void {
  const bad = (what: string, v: string) => new TdcError('EJOURNAL_INPUT', `journal: invalid ${what}: ${JSON.stringify(v)}`);
  if (!/^[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?$/.test(input.hostname)) throw bad('hostname', input.hostname);
  if (!/^[^\s<>@]+@[^\s<>@]+$/.test(input.intakeAddress)) throw bad('intake address', input.intakeAddress);
  if (!/^[\x21-\x39\x3b-\x7e]+$/.test(input.remoteIpHeader)) throw bad('remote IP header name', input.remoteIpHeader);
  if (Number.isNaN(input.date.getTime())) throw bad('date', String(input.date));
}

/** First header of that name, raw; undefined when absent. */
function rawHeader(msg: CapturedMessage, name: string): string | undefined {
  const lower = name.toLowerCase();
  return msg.headers.find((x) => x.name.toLowerCase() === lower)?.value;
}

/** The attached original's header block: earlier remote-IP headers renamed, so ours is the only one. */
function attachedHeaderBlock(msg: CapturedMessage, remoteIpHeader: string): Buffer {
  const lower = remoteIpHeader.toLowerCase();
  let s = '';
  for (const h of msg.headers) {
    const field = h.name.toLowerCase() === lower ? { name: `${RENAMED_PREFIX}${h.name}`, value: h.value } : h;
    s += headerLine(field, msg.headerValuesExact);
  }
  return Buffer.from(`${s}\r\n`, 'latin1');
}

/** The transfer needs of the original (header block and body), computed once per message. */
export function describeOriginal(msg: CapturedMessage): OriginalFacts {
  const parts = [Buffer.from(msg.headers.map((h) => headerLine(h, msg.headerValuesExact)).join(''), 'latin1'), ...msg.body];
  if (hasLongLine(parts)) return { body: 'binary' };
  const ascii = parts.every((b) => isAscii(b)) && isAscii(Buffer.from(msg.sender.address, 'latin1'));
  return { body: ascii ? '7bit' : '8bit' };
}

/** The report's lines ([MS-XJRNL] §2.1), in Unicode, each at most 998 UTF-8 octets. */
export function reportLines(msg: CapturedMessage, recipients: readonly string[]): string[] {
  const line = (name: string, value: string) => cutUtf8(`${name}: ${value}`.trimEnd(), MAX_LINE);
  const senderRaw = rawHeader(msg, 'Sender');
  const fromRaw = rawHeader(msg, 'From');
  const senderAddr = senderRaw === undefined ? undefined : firstAddress(senderRaw);
  const fromAddr = fromRaw === undefined ? undefined : firstAddress(fromRaw);
  const sender = senderAddr ?? fromAddr;
  const lines = [line('Sender', sender ?? UNSPECIFIED_ADDRESS)];
  if (fromAddr !== undefined && sender !== undefined && fromAddr.toLowerCase() !== sender.toLowerCase()) {
    lines.push(line('On-Behalf-Of', fromAddr));
  }
  lines.push(line('Subject', decodeHeaderText(rawHeader(msg, 'Subject') ?? '')));
  const id = plainHeaderText(rawHeader(msg, 'Message-ID') ?? '');
  lines.push(line('Message-Id', id === '' ? UNKNOWN_MESSAGE_ID : id));
  for (const r of recipients) lines.push(line('Recipient', plainHeaderText(r)));
  return lines;
}

/** The wrapper's Subject: the original's when it is ASCII, else its decoded text as RFC 2047 words. */
function wrapperSubject(msg: CapturedMessage): string {
  const raw = singleLine(rawHeader(msg, 'Subject') ?? '');
  if (/^[\x20-\x7e\t]*$/.test(raw)) return headerField('Subject', raw);
  return encodedHeaderField('Subject', cutUtf8(decodeHeaderText(raw), MAX_LINE));
}

/** The whole journal message, CRLF line ends. Throws TdcError only for invalid settings (never for message content). */
export function buildJournal(input: JournalInput): Buffer {
  return Buffer.concat(buildJournalParts(input));
}

/**
 * The journal message as pieces laid end to end: our head, the original's header block and its
 * body chunks *as received* (not copied: a copy of a megabyte into fresh memory cost more than
 * everything else we do with it), our tail. Same bytes as buildJournal.
 */
export function buildJournalParts(input: JournalInput): Buffer[] {
  checkInput(input);
  const msg = input.message;
  const host = input.hostname;
  const copyId = token(input.copyId, 128);
  const policies = input.policies.map((p) => token(p)).join(',');
  const original = input.original ?? describeOriginal(msg);

  // The attached original: Return-Path (the envelope sender, as a final delivery adds it), our
  // remote-IP header, then the original's header block (earlier remote-IP headers renamed) and body.
  const inner: Buffer[] = [];
  const ip = msg.clientIp; // the MTA's, already normalised by the milter
  let top = `Return-Path: <${singleLine(msg.sender.address)}>\r\n`;
  if (ip !== undefined) top += `${input.remoteIpHeader}: ${ip}\r\n`;
  inner.push(Buffer.from(top, 'latin1'), attachedHeaderBlock(msg, input.remoteIpHeader), ...msg.body.filter((b) => b.length > 0));

  const reportText = `${reportLines(msg, input.recipients).join('\r\n')}\r\n`;
  const reportAscii = /^[\x00-\x7f]*$/.test(reportText);
  const report = reportAscii ? reportText : quotedPrintable(reportText);

  const messageId = singleLine(rawHeader(msg, 'Message-ID') ?? '').trim();
  const headers = [
    `From: TDC Journal <postmaster@${host}>`,
    `To: <${input.intakeAddress}>`,
    wrapperSubject(msg),
    `Date: ${rfc5322Date(input.date)}`,
    `Message-ID: <tdc.${copyId}@${host}>`,
    'MIME-Version: 1.0',
    'X-MS-Journal-Report:',
    'Auto-Submitted: auto-generated',
    // Only an ASCII id fits an ASCII header; the report line carries any other.
    ...(messageId !== '' && /^[\x21-\x7e]+$/.test(messageId) ? [headerField('X-MS-Exchange-Parent-Message-Id', messageId)] : []),
    `${JOURNAL_HEADER}: ${host}; queue-id=${token(msg.queueId) || 'NOQUEUE'}; copy-id=${copyId}; policy=${policies}`,
  ].join('\r\n');

  const boundary = chooseBoundary(copyId, [...inner, Buffer.from(`${headers}\r\n${report}`, 'latin1')]);
  const head =
    `${headers}\r\nContent-Type: multipart/mixed; boundary="${boundary}"\r\n` +
    // RFC 2045 §6.4: a multipart is labelled with the widest encoding inside it (absent = 7bit).
    `${original.body === '7bit' ? '' : `Content-Transfer-Encoding: ${original.body}\r\n`}\r\n` +
    `--${boundary}\r\nContent-Type: text/plain; charset=${reportAscii ? 'us-ascii' : 'utf-8'}\r\n` +
    `Content-Transfer-Encoding: ${reportAscii ? '7bit' : 'quoted-printable'}\r\n\r\n` +
    // Every report line ends in CRLF, the last one too ([MS-XJRNL] §2.1); the CRLF after it belongs to the delimiter.
    `${report}\r\n--${boundary}\r\nContent-Type: message/rfc822\r\nContent-Disposition: attachment\r\n` +
    `Content-Transfer-Encoding: ${original.body}\r\n\r\n`;
  // The CRLF before the closing delimiter belongs to the delimiter, so the attached original keeps its last byte.
  return [Buffer.from(head, 'latin1'), ...inner, Buffer.from(`\r\n--${boundary}--\r\n`, 'latin1')];
}
