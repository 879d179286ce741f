/**
 * Whether bytes laid end to end hold a line over SMTP's 998 octets (RFC 5321 4.5.3.1.6), the test
 * that makes a message `binary` (RFC 3030) rather than 7bit/8bit. One implementation for the journal
 * builder and the delivery agent, so they never disagree. Pure; imports nothing of the project.
 */

/** Octets of one line without its line end (RFC 5322 2.1.1, RFC 5321 4.5.3.1.6). */
export const MAX_LINE = 998;

const LF = 0x0a;
const CR = 0x0d;

/**
 * True when a line of `parts` laid end to end is longer than 998 octets without its line end: a CR
 * right before the LF is the line end, a bare LF is the line end alone (on the wire it becomes CRLF, so
 * 999 octets before a bare LF are too long); a last line without LF: more than 998 octets. Strides from
 * LF to the last LF within reach instead of visiting every line: a megabyte costs about a thousand scans.
 */
export function hasLongLine(parts: readonly Buffer[]): boolean {
  let run = 0; // octets of the current line seen so far, a CR included
  let previous = -1; // the last byte of the parts before this one
  for (const p of parts) {
    let pos = 0;
    for (;;) {
      const reach = pos + (MAX_LINE + 1 - run); // the current line's LF may be here at the latest (after a CR)
      if (reach >= p.length) {
        const lf = p.lastIndexOf(LF, p.length - 1);
        run = lf < pos ? run + p.length - pos : p.length - lf - 1;
        break;
      }
      const lf = p.lastIndexOf(LF, reach);
      if (lf < pos) return true;
      // An LF at the very edge ends a 998-octet line only when a CR comes before it.
      if (lf === reach && (lf > pos ? p.lastIndexOf(LF, lf - 1) < pos : true)) {
        const before = lf > 0 ? p[lf - 1] : previous;
        if (before !== CR) return true;
      }
      run = 0;
      pos = lf + 1;
    }
    if (p.length > 0) previous = p[p.length - 1]!;
  }
  return run > MAX_LINE;
}
