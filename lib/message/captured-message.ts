/**
 * The message as the MTA handed it to us, in MTA-neutral terms: queue id, listener, authenticated
 * user, client, envelope, headers in order and body chunks (the milter maps its macros onto these).
 * Text from the wire is kept as *byte strings* (latin1-decoded, so every byte round-trips exactly);
 * `originalMessage()` rebuilds the bytes the MTA saw. Imports nothing but util.
 */

/** A string whose characters are bytes 0–255 (latin1-decoded wire data). */
export type ByteString = string;

export interface SmtpAddress {
  /** The address without angle brackets; '' for the null sender. */
  address: ByteString;
  /** ESMTP parameters that followed it (`SIZE=…`, `NOTIFY=…`), in order. */
  args: ByteString[];
}

export interface ClientInfo {
  /** The client host name the MTA reported (Postfix: verified name or `[addr]`). */
  hostname: ByteString;
  family: 'inet' | 'inet6' | 'unix' | 'unknown';
  /** IP address (no `IPv6:` prefix, no brackets), or the socket path for unix. */
  address?: string;
  port?: number;
}

export interface HeaderField {
  name: ByteString;
  /** The value as the MTA sent it; folded lines are joined by `\n`. */
  value: ByteString;
}

export interface CapturedMessage {
  /** The MTA's queue id, '' if the MTA never said. */
  queueId: string;
  /** Name of the MTA listener the message came in on (Postfix: milter_macro_daemon_name); undefined if unknown. */
  listener?: ByteString;
  /** The SMTP AUTH user name when the client authenticated; undefined otherwise. */
  authenticatedUser?: ByteString;
  /** The client's IP address (no brackets or `IPv6:` prefix, IPv4-mapped IPv6 as IPv4), when known. */
  clientIp?: string;
  client: ClientInfo | undefined;
  helo: ByteString | undefined;
  sender: SmtpAddress;
  recipients: SmtpAddress[];
  headers: HeaderField[];
  /** True when header values carry their own leading whitespace (SMFIP_HDR_LEADSPC negotiated). */
  headerValuesExact: boolean;
  /** Body chunks as received, CRLF line ends. */
  body: Buffer[];
  /** Body bytes the MTA sent, including any not kept because of the size cap. */
  bodyBytes: number;
  /** True when the body passed the size cap and was not kept whole (`body` is then incomplete). */
  oversized: boolean;
  /** True when the milter connection asked the MTA for no headers and body (journaling was off then). */
  withoutContent?: boolean;
}

/** Strip the angle brackets Postfix/Sendmail keep around envelope addresses (`<a@b>`, `<>`). */
export function unbracket(raw: ByteString): ByteString {
  const t = raw.trim();
  if (t.startsWith('<') && t.endsWith('>')) return t.slice(1, -1);
  return t;
}

/** One header field as it stood in the message, CRLF-terminated. */
export function headerLine(h: HeaderField, valuesExact: boolean): ByteString {
  const value = h.value.replace(/\r?\n/g, '\r\n');
  if (valuesExact || value === '') return `${h.name}:${value}\r\n`;
  // Without HDR_LEADSPC the MTA removed exactly one space after the colon.
  return `${h.name}: ${value}\r\n`;
}

/** The header block (with the blank separator line) as bytes. */
export function headerBlock(msg: Pick<CapturedMessage, 'headers' | 'headerValuesExact'>): Buffer {
  let s = '';
  for (const h of msg.headers) s += headerLine(h, msg.headerValuesExact);
  s += '\r\n';
  return Buffer.from(s, 'latin1');
}

/** The message bytes the MTA handed us: headers in order, blank line, body. */
export function originalMessage(msg: CapturedMessage): Buffer {
  return Buffer.concat([headerBlock(msg), ...msg.body], undefined);
}

/** First header of that name (case-insensitive), value trimmed; undefined when absent. */
export function findHeader(msg: Pick<CapturedMessage, 'headers'>, name: string): ByteString | undefined {
  const lower = name.toLowerCase();
  const h = msg.headers.find((x) => x.name.toLowerCase() === lower);
  return h === undefined ? undefined : h.value.trim();
}
