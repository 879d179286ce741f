/**
 * Header text for the journal report: RFC 2047 decoding to valid UTF-8, RFC 2047 encoding of a
 * wrapper value, quoted-printable for the report part, and the first mailbox address of From/Sender.
 * Pure; works on byte strings (latin1-decoded wire text). Imports only ./sanitize.
 */
import { isUtf8 } from 'node:buffer';
import { singleLine } from './sanitize';

/**
 * C0 controls (tab kept), DEL, C1 controls (NEL among them) and U+2028/U+2029: decoded text must not
 * carry a line break or NUL into a report line, not even one that only a Unicode-aware line splitter
 * (Python's splitlines, a .NET regex's `.`) sees, where "Subject: hi<U+2028>Recipient: x" is two lines.
 */
const CONTROLS = /[\x00-\x08\x0a-\x1f\x7f-\x9f\u2028\u2029]/g;

/** Raw header bytes as text: UTF-8 when they are valid UTF-8, else windows-1252 (never invalid UTF-8). */
function bytesToText(bytes: Buffer): string {
  return isUtf8(bytes) ? bytes.toString('utf8') : new TextDecoder('windows-1252').decode(bytes);
}

function decodeCharset(charset: string, bytes: Buffer): string | undefined {
  try {
    // Unknown labels throw; undecodable bytes become U+FFFD, so the result is always valid UTF-8.
    return new TextDecoder(charset.replace(/\*.*$/, '').trim()).decode(bytes);
  } catch {
    return undefined;
  }
}

function wordBytes(encoding: string, text: string): Buffer {
  if (encoding === 'b') return Buffer.from(text, 'base64');
  const q = text.replace(/_/g, ' ').replace(/=([0-9A-Fa-f]{2})/g, (_, h: string) => String.fromCharCode(parseInt(h, 16)));
  return Buffer.from(q, 'latin1');
}

const WORD = /=\?([^?\s]+)\?([BbQq])\?([^?\s]*)\?=/g;

/**
 * A header value as a person reads it: unfolded, RFC 2047 encoded-words decoded (adjacent words of
 * one charset joined before decoding, so a character split across words survives), raw 8-bit bytes
 * read as UTF-8 or windows-1252, control characters removed. Always valid UTF-8, always one line.
 */
export function decodeHeaderText(raw: string): string {
  const value = singleLine(raw);
  let out = '';
  let last = 0;
  let pending: { charset: string; bytes: Buffer[]; raw: string } | undefined;
  const flush = () => {
    if (!pending) return;
    const text = decodeCharset(pending.charset, Buffer.concat(pending.bytes));
    out += text ?? pending.raw;
    pending = undefined;
  };
  for (const m of value.matchAll(WORD)) {
    const between = value.slice(last, m.index);
    const charset = m[1]!.toLowerCase();
    // RFC 2047 6.2: white space between adjacent encoded-words is not displayed.
    if (pending && /^[ \t]*$/.test(between) && pending.charset === charset) {
      pending.bytes.push(wordBytes(m[2]!.toLowerCase(), m[3]!));
      pending.raw += between + m[0];
    } else if (pending && /^[ \t]*$/.test(between)) {
      flush();
      pending = { charset, bytes: [wordBytes(m[2]!.toLowerCase(), m[3]!)], raw: m[0] };
    } else {
      flush();
      out += bytesToText(Buffer.from(between, 'latin1'));
      pending = { charset, bytes: [wordBytes(m[2]!.toLowerCase(), m[3]!)], raw: m[0] };
    }
    last = m.index + m[0].length;
  }
  flush();
  out += bytesToText(Buffer.from(value.slice(last), 'latin1'));
  return out.replace(CONTROLS, '').trim();
}

/** Cut text to at most `max` UTF-8 bytes without splitting a character. */
export function cutUtf8(text: string, max: number): string {
  if (Buffer.byteLength(text, 'utf8') <= max) return text;
  let n = 0;
  let end = 0;
  for (const ch of text) {
    const len = Buffer.byteLength(ch, 'utf8');
    if (n + len > max) break;
    n += len;
    end += ch.length;
  }
  return text.slice(0, end);
}

/** RFC 2047 §2: a line of a header field with encoded-words is at most 76 characters. */
const ENCODED_LINE = 76;
/** `=?UTF-8?B?` + `?=`. */
const WORD_OVERHEAD = 12;

/** UTF-8 bytes that fit in one B-word after `lead` characters of its line (whole base64 quanta). */
function wordBudget(lead: number): number {
  return Math.floor((ENCODED_LINE - lead - WORD_OVERHEAD) / 4) * 3;
}

/**
 * `Name: value` with a non-ASCII value as RFC 2047 UTF-8 B-words, folded one word per line, each line
 * within 76 characters, the first with its field name (RFC 2047 §2; so every word is at most 75), so
 * the header is ASCII and never needs SMTPUTF8.
 */
export function encodedHeaderField(name: string, text: string): string {
  const words: string[] = [];
  // A continuation line is ` WORD`: 45 bytes → 60 base64 characters, a 73-character line.
  const next = wordBudget(1);
  let max = wordBudget(name.length + 2);
  // A field name too long for even one 4-byte character leaves its first line empty.
  if (max < 4) {
    words.push('');
    max = next;
  }
  let chunk = '';
  let bytes = 0;
  for (const ch of text) {
    const len = Buffer.byteLength(ch, 'utf8');
    if (bytes + len > max && chunk !== '') {
      words.push(chunk);
      chunk = '';
      bytes = 0;
      max = next;
    }
    chunk += ch;
    bytes += len;
  }
  if (chunk !== '') words.push(chunk);
  const encoded = words.map((w) => (w === '' ? '' : `=?UTF-8?B?${Buffer.from(w, 'utf8').toString('base64')}?=`));
  return encoded[0] === '' ? `${name}:\r\n ${encoded.slice(1).join('\r\n ')}` : `${name}: ${encoded.join('\r\n ')}`;
}

/** Quoted-printable (RFC 2045 §6.7) of UTF-8 text with CRLF line ends; lines within 76 characters. */
export function quotedPrintable(text: string): string {
  const out: string[] = [];
  for (const line of text.split('\r\n')) {
    const bytes = Buffer.from(line, 'utf8');
    let cur = '';
    for (let i = 0; i < bytes.length; i++) {
      const b = bytes[i]!;
      const atEnd = i === bytes.length - 1;
      const literal = (b >= 33 && b <= 126 && b !== 61) || ((b === 32 || b === 9) && !atEnd);
      const piece = literal ? String.fromCharCode(b) : `=${b.toString(16).toUpperCase().padStart(2, '0')}`;
      if (cur.length + piece.length > 75) {
        out.push(`${cur}=`);
        cur = '';
      }
      cur += piece;
    }
    out.push(cur);
  }
  return out.join('\r\n');
}

/** Replace quoted strings and (nested) comments by a space, so `<`, `,` and `@` in them do not count. */
function withoutQuotesAndComments(s: string): string {
  let out = '';
  let depth = 0;
  let quoted = false;
  for (let i = 0; i < s.length; i++) {
    const c = s[i]!;
    if (c === '\\' && (quoted || depth > 0)) { i++; continue; }
    if (quoted) { if (c === '"') { quoted = false; out += ' '; } continue; }
    if (depth > 0) { if (c === '(') depth++; else if (c === ')') { depth--; if (depth === 0) out += ' '; } continue; }
    // A quoted local part ("john doe"@example) is kept as it is written.
    if (c === '"') {
      const close = s.indexOf('"', i + 1);
      if (close > 0 && s[close + 1] === '@') { out += s.slice(i, close + 1); i = close; continue; }
      quoted = true;
      continue;
    }
    if (c === '(') { depth = 1; continue; }
    out += c;
  }
  return out;
}

const ADDRESS = /^(?:"[^"]*"|[^\s<>(),;:@"]+)@[^\s<>(),;:@"]+$/;

/**
 * The first mailbox address of a From: or Sender: value (`Name <a@b>`, `a@b (Name)`, a group, a
 * list), or undefined when it holds none (`<>`, `undisclosed-recipients:;`, no `@`).
 */
export function firstAddress(raw: string): string | undefined {
  const s = withoutQuotesAndComments(singleLine(raw));
  const angle = /<([^<>]*)>/.exec(s);
  let candidate: string | undefined;
  if (angle) {
    // Drop an obsolete source route (`<@relay:a@b>`).
    candidate = angle[1]!.trim().replace(/^(?:@[^:,]*,?)+:/, '');
  } else {
    for (let item of s.split(/[,;]/)) {
      item = item.trim().replace(/^[^@]*:\s*/, ''); // a group's `Name:` before its first member
      if (item.includes('@')) { candidate = item; break; }
    }
  }
  candidate = candidate?.trim();
  return candidate !== undefined && ADDRESS.test(candidate) ? plainHeaderText(candidate) : undefined;
}

/** A value copied as written (no RFC 2047 decoding: a Message-ID, an address), as valid one-line UTF-8. */
export function plainHeaderText(raw: string): string {
  return bytesToText(Buffer.from(singleLine(raw), 'latin1')).replace(CONTROLS, '').trim();
}
