/**
 * Making sender-controlled text safe to copy into the journal wrapper and report: one line (unfolded,
 * CR/LF/NUL removed), within SMTP's 998-octet line limit, and tokens limited to safe characters.
 * Pure; works on byte strings (latin1-decoded wire text). Imports nothing of the project.
 */

/** Max octets of one line without its CRLF (RFC 5322 2.1.1). */
export const MAX_LINE = 998;

/** Unfold (CRLF/LF + WSP → the WSP), then drop any other CR, LF and NUL; trim. */
export function singleLine(value: string): string {
  return value.replace(/\r?\n(?=[ \t])/g, '').replace(/[\r\n\0]/g, '').trim();
}

/** Cut a byte string to `max` octets without splitting a UTF-8 sequence. */
export function cutBytes(s: string, max: number): string {
  if (s.length <= max) return s;
  let end = max;
  // Step back over UTF-8 continuation bytes (10xxxxxx) and the lead byte they belong to.
  while (end > 0 && (s.charCodeAt(end) & 0xc0) === 0x80) end--;
  return s.slice(0, end);
}

/** `Name: value` as one line, cut to the line limit. For lines of the report part. */
export function reportLine(name: string, value: string): string {
  return cutBytes(`${name}: ${value}`.trimEnd(), MAX_LINE);
}

/**
 * `Name: value` for the wrapper header, folded at whitespace only when longer than the line limit
 * (a run of over ~990 octets without whitespace is cut). `value` must already be single-line.
 */
export function headerField(name: string, value: string): string {
  const first = `${name}: ${value}`.trimEnd();
  if (first.length <= MAX_LINE) return first;
  const lines: string[] = [];
  let current = `${name}:`;
  for (const word of value.match(/[ \t]*[^ \t]+/g) ?? []) {
    const w = cutBytes(word, MAX_LINE - 1);
    if (current.length + w.length > MAX_LINE) {
      lines.push(current);
      current = /^[ \t]/.test(w) ? w : ` ${w}`;
    } else {
      current += current.endsWith(':') && !/^[ \t]/.test(w) ? ` ${w}` : w;
    }
  }
  lines.push(current);
  return lines.join('\r\n');
}

/** Keep a token (queue id, copy id, policy name) to `[A-Za-z0-9._-]`; other characters become `_`. */
export function token(s: string, max = 64): string {
  return s.replace(/[^A-Za-z0-9._-]/g, '_').slice(0, max);
}
