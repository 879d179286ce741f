/**
 * The journal message: an Exchange-style envelope journal report (text/plain part listing sender,
 * subject, Message-Id and recipients) with the original attached byte for byte as message/rfc822.
 * Deterministic given its input. Imports message and util only; never policy, milter or forwarder.
 */
import { createHash } from 'node:crypto';
import { isAscii } from 'node:buffer';
import * as net from 'node:net';
import { getMacro, headerBlock, type CapturedMessage } from '../message';
import { TdcError } from '../util/errors';
import { headerField, reportLine, singleLine, token } from './sanitize';

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
}

/** Our marker header on every journal message (policy skips messages carrying it). */
export const JOURNAL_HEADER = 'X-TDC-Journal';

const DAYS = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'];
const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

/** RFC 5322 date-time in UTC: `Mon, 23 Nov 2026 18:20:01 +0000`. */
export function rfc5322Date(d: Date): string {
  const p = (n: number) => String(n).padStart(2, '0');
  return `${DAYS[d.getUTCDay()]}, ${p(d.getUTCDate())} ${MONTHS[d.getUTCMonth()]} ${d.getUTCFullYear()} ` +
    `${p(d.getUTCHours())}:${p(d.getUTCMinutes())}:${p(d.getUTCSeconds())} +0000`;
}

/** First header of that name, raw value made single-line; undefined when absent. */
function headerValue(msg: CapturedMessage, name: string): string | undefined {
  const lower = name.toLowerCase();
  const h = msg.headers.find((x) => x.name.toLowerCase() === lower);
  return h === undefined ? undefined : singleLine(h.value);
}

/** The client IP for the sender-IP header: connect info, else `{client_addr}`; mapped IPv6 → IPv4. */
export function clientIpText(msg: CapturedMessage): string | undefined {
  const candidates = [
    msg.client && (msg.client.family === 'inet' || msg.client.family === 'inet6') ? msg.client.address : undefined,
    getMacro(msg.macros, 'client_addr'),
  ];
  for (const c of candidates) {
    if (c === undefined) continue;
    const t = c.trim().replace(/^\[(.*)\]$/, '$1').replace(/^ipv6:/i, '');
    if (net.isIP(t) === 0) continue;
    const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(t);
    return mapped ? mapped[1]! : t.toLowerCase();
  }
  return undefined;
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
  const subject = headerValue(msg, 'Subject') ?? '';
  const messageId = headerValue(msg, 'Message-ID');
  const sender = singleLine(msg.sender.address);
  const policies = input.policies.map((p) => token(p)).join(',');

  const ip = clientIpText(msg);
  // The attached original as pieces: sender-IP line, header block, body chunks.
  const inner: Buffer[] = [];
  if (ip !== undefined) inner.push(Buffer.from(`${input.remoteIpHeader}: ${ip}\r\n`, 'latin1'));
  inner.push(headerBlock(msg), ...msg.body.filter((b) => b.length > 0));

  const report = [
    reportLine('Sender', sender === '' ? '<>' : sender),
    reportLine('Subject', subject),
    ...(messageId === undefined ? [] : [reportLine('Message-Id', messageId)]),
    ...input.recipients.map((r) => reportLine('Recipient', singleLine(r))),
  ].join('\r\n');

  const headers = [
    `From: TDC Journal <postmaster@${host}>`,
    `To: <${input.intakeAddress}>`,
    headerField('Subject', subject),
    `Date: ${rfc5322Date(input.date)}`,
    `Message-ID: <tdc.${copyId}@${host}>`,
    'MIME-Version: 1.0',
    'X-MS-Journal-Report:',
    `${JOURNAL_HEADER}: ${host}; queue-id=${token(msg.queueId) || 'NOQUEUE'}; copy-id=${copyId}; policy=${policies}`,
  ].join('\r\n');

  const innerAscii = inner.every((b) => isAscii(b));
  const boundary = chooseBoundary(copyId, [...inner, Buffer.from(`${headers}\r\n${report}`, 'latin1')]);
  const eightBit = !innerAscii || !isAscii(Buffer.from(`${headers}${report}`, 'latin1'));
  const head =
    `${headers}\r\nContent-Type: multipart/mixed; boundary="${boundary}"\r\n` +
    // RFC 2045 6.4: a multipart holding 8-bit data is labelled 8bit (absent = 7bit).
    `${eightBit ? 'Content-Transfer-Encoding: 8bit\r\n' : ''}\r\n` +
    `--${boundary}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n` +
    `${report}\r\n` +
    `--${boundary}\r\nContent-Type: message/rfc822\r\nContent-Disposition: attachment\r\n` +
    `Content-Transfer-Encoding: ${innerAscii ? '7bit' : '8bit'}\r\n\r\n`;
  // The CRLF before the closing delimiter belongs to the delimiter, so the attached original keeps its last byte.
  return [Buffer.from(head, 'latin1'), ...inner, Buffer.from(`\r\n--${boundary}--\r\n`, 'latin1')];
}
