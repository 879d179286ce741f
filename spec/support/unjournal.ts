/**
 * A strict re-implementation, for specs, of what journal-report parsers require (Exchange's
 * un-journaling rules and mailpiler's, per receiver-facts.md §1): the report is recognised by
 * `X-MS-Journal-Report:`, its first text part gives a non-empty, non-`<>` Sender, a Message-Id line
 * and Recipient lines (every line CRLF-terminated), and a message/rfc822 part holds the original.
 * Stricter than any one parser: CRLF only, an ASCII wrapper header, encodings that fit the bytes.
 * Imports nothing of the project.
 */

export class UnjournalError extends Error {}

export interface Unjournaled {
  sender: string;
  onBehalfOf?: string;
  subject: string;
  messageId: string;
  recipients: string[];
  /** The report part's transfer encoding and charset as labelled. */
  reportEncoding: string;
  reportCharset: string;
  /** The message/rfc822 part's label and its bytes. */
  originalEncoding: string;
  original: Buffer;
  /** The wrapper's header block as text. */
  wrapperHeader: string;
}

const fail = (why: string): never => {
  throw new UnjournalError(why);
};

/** Header block → [name, unfolded value] pairs. */
function fields(block: string): [string, string][] {
  const out: [string, string][] = [];
  for (const line of block.split('\r\n')) {
    if (line === '') continue;
    if (/^[ \t]/.test(line)) {
      if (out.length === 0) fail('a header block starts with a continuation line');
      out[out.length - 1]![1] += line;
      continue;
    }
    const m = /^([\x21-\x39\x3b-\x7e]+):(.*)$/.exec(line);
    if (!m) fail(`not a header line: ${JSON.stringify(line.slice(0, 80))}`);
    out.push([m![1]!, m![2]!.trim()]);
  }
  return out;
}

const get = (f: [string, string][], name: string) => f.find(([n]) => n.toLowerCase() === name.toLowerCase())?.[1];

function splitHead(buf: Buffer): { head: string; body: Buffer } {
  const end = buf.indexOf('\r\n\r\n');
  if (end < 0) fail('no blank line after a header block');
  return { head: buf.subarray(0, end).toString('latin1'), body: buf.subarray(end + 4) };
}

function decodeQuotedPrintable(text: string): Buffer {
  if (/[^\x09\x0d\x0a\x20-\x7e]/.test(text)) fail('8-bit bytes in a quoted-printable part');
  const bytes: number[] = [];
  const soft = text.replace(/=\r\n/g, '');
  for (let i = 0; i < soft.length; i++) {
    const c = soft[i]!;
    if (c === '=') {
      const hex = soft.slice(i + 1, i + 3);
      if (!/^[0-9A-F]{2}$/.test(hex)) fail(`bad quoted-printable escape =${hex}`);
      bytes.push(parseInt(hex, 16));
      i += 2;
    } else bytes.push(c.charCodeAt(0));
  }
  return Buffer.from(bytes);
}

function longestLine(buf: Buffer): number {
  let max = 0;
  for (const line of buf.toString('latin1').split('\r\n')) max = Math.max(max, line.length);
  return max;
}

/** Check the transfer encoding label against the bytes it labels (RFC 2045 §2.7–2.9). */
function checkLabel(what: string, cte: string, content: Buffer): void {
  if (cte === 'binary') return;
  if (longestLine(content) > 998) fail(`${what}: a line over 998 octets labelled ${cte}`);
  if (cte === '7bit' && content.some((b) => b >= 0x80)) fail(`${what}: 8-bit bytes labelled 7bit`);
}

/** Parse a journal report the way a strict receiver would; throws UnjournalError with the reason. */
export function unjournal(raw: Buffer): Unjournaled {
  const { head, body } = splitHead(raw);
  // Our bytes end every line in CRLF; only the original's own bytes are left as the sender wrote them.
  const bare = (what: string, t: string) => /(?<!\r)\n|\r(?!\n)/.test(t) && fail(`a bare LF or CR in ${what} (every line must end in CRLF)`);
  bare('the wrapper header', head);
  if (/[^\x00-\x7f]/.test(head)) fail('8-bit bytes in the wrapper header (would need SMTPUTF8)');
  if (!/(^|\r\n)X-MS-Journal-Report:/.test(head)) fail('no X-MS-Journal-Report: line at the start of a wrapper header line');
  const top = fields(head);
  const ct = get(top, 'Content-Type') ?? fail('no Content-Type');
  const b = /^multipart\/mixed;\s*boundary="?([^";]+)"?/i.exec(ct!) ?? fail(`not multipart/mixed: ${ct}`);
  const boundary = b![1]!;
  const topCte = (get(top, 'Content-Transfer-Encoding') ?? '7bit').toLowerCase();

  // RFC 2046 §5.1.1: parts sit between CRLF--boundary delimiters; the CRLF before one belongs to it.
  const delim = Buffer.from(`\r\n--${boundary}`, 'latin1');
  const withLead = Buffer.concat([Buffer.from('\r\n'), body]);
  const cuts: number[] = [];
  for (let at = withLead.indexOf(delim); at >= 0; at = withLead.indexOf(delim, at + 1)) cuts.push(at);
  if (cuts.length < 2) fail('fewer than two parts');
  const closing = withLead.subarray(cuts[cuts.length - 1]! + delim.length, cuts[cuts.length - 1]! + delim.length + 2).toString('latin1');
  if (closing !== '--') fail('no closing delimiter');
  const parts: Buffer[] = [];
  for (let i = 0; i + 1 < cuts.length; i++) {
    const start = cuts[i]! + delim.length;
    if (withLead.subarray(start, start + 2).toString('latin1') !== '\r\n') fail('text after a delimiter');
    parts.push(withLead.subarray(start + 2, cuts[i + 1]!));
  }
  if (parts.length !== 2) fail(`expected 2 parts (report, original), got ${parts.length}`);

  // Part 1: the report.
  bare('the report part', parts[0]!.toString('latin1'));
  const r = splitHead(parts[0]!);
  const rf = fields(r.head);
  const rct = get(rf, 'Content-Type') ?? 'text/plain';
  const rm = /^text\/plain(?:;\s*charset="?([^";]+)"?)?/i.exec(rct) ?? fail(`report part is ${rct}, not text/plain`);
  const charset = (rm![1] ?? 'us-ascii').toLowerCase();
  const rcte = (get(rf, 'Content-Transfer-Encoding') ?? '7bit').toLowerCase();
  let reportBytes: Buffer;
  if (rcte === 'quoted-printable') reportBytes = decodeQuotedPrintable(r.body.toString('latin1'));
  else if (rcte === '7bit' || rcte === '8bit') {
    checkLabel('report part', rcte, r.body);
    reportBytes = r.body;
  } else reportBytes = fail(`report part encoded ${rcte}`);
  if (charset !== 'us-ascii' && charset !== 'utf-8') fail(`report charset ${charset}`);
  const report = new TextDecoder(charset === 'us-ascii' ? 'ascii' : 'utf-8', { fatal: true }).decode(reportBytes);
  if (!report.endsWith('\r\n')) fail('the last report line has no CRLF');
  if (/(?<!\r)\n|\r(?!\n)/.test(report)) fail('a bare LF or CR in the report');

  let sender: string | undefined;
  let onBehalfOf: string | undefined;
  let subject: string | undefined;
  let messageId: string | undefined;
  const recipients: string[] = [];
  for (const line of report.slice(0, -2).split('\r\n')) {
    let m: RegExpExecArray | null;
    if ((m = /^Sender:\s*(.*)$/i.exec(line))) {
      if (sender !== undefined) fail('two Sender lines');
      sender = m[1]!.trim();
    } else if ((m = /^On-Behalf-Of:\s*(.*)$/i.exec(line))) onBehalfOf = m[1]!.trim();
    else if ((m = /^Subject:\s?(.*)$/i.exec(line))) subject = m[1]!;
    else if ((m = /^Message-Id:\s*(.*)$/i.exec(line))) messageId = m[1]!.trim();
    else if ((m = /^(?:Recipient|To|Cc|Bcc):\s*(.*?)(?:,\s*(?:Expanded|Forwarded):.*)?$/i.exec(line))) recipients.push(m[1]!.trim());
    else fail(`a report line no parser knows: ${JSON.stringify(line)}`);
  }
  if (sender === undefined || sender === '' || sender === '<>') fail(`missing or null sender: ${JSON.stringify(sender)}`);
  if (messageId === undefined || messageId === '') fail('no Message-Id line');
  if (recipients.length === 0) fail('no recipient lines');

  // Part 2: the original.
  const o = splitHead(parts[1]!);
  bare('the message/rfc822 part header', o.head);
  const of = fields(o.head);
  if (!/^message\/rfc822\b/i.test(get(of, 'Content-Type') ?? '')) fail('second part is not message/rfc822');
  const octe = (get(of, 'Content-Transfer-Encoding') ?? '7bit').toLowerCase();
  if (!['7bit', '8bit', 'binary'].includes(octe)) fail(`message/rfc822 encoded ${octe} (RFC 2046 §5.2.1 allows 7bit, 8bit, binary)`);
  checkLabel('message/rfc822 part', octe, o.body);
  const rank = (e: string) => ['7bit', '8bit', 'binary'].indexOf(e);
  if (rank(topCte) < rank(octe)) fail(`multipart labelled ${topCte} holds a ${octe} part`);

  return {
    sender: sender!, ...(onBehalfOf !== undefined ? { onBehalfOf } : {}), subject: subject ?? '', messageId: messageId!, recipients,
    reportEncoding: rcte, reportCharset: charset, originalEncoding: octe, original: o.body, wrapperHeader: head,
  };
}
