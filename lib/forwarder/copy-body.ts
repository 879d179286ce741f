/**
 * What a copy's bytes need from the server when the journal builder did not say: '7bit' (ASCII,
 * lines of at most 998 bytes), '8bit' (RFC 6152) or 'binary' (a line over 998 bytes, RFC 3030).
 * Native scans only (Buffer isAscii / indexOf): this runs once per copy. Imports this folder only.
 */
import { isAscii } from 'node:buffer';
import type { JournalCopy } from './types';

/** RFC 5321 4.5.3.1.6: 998 bytes plus CRLF. */
const MAX_LINE = 998;

function longLine(piece: Buffer, carried: number): { long: boolean; carried: number } {
  let from = 0;
  let run = carried;
  for (;;) {
    const lf = piece.indexOf(0x0a, from);
    const end = lf < 0 ? piece.length : lf;
    // The line's length without its CR (a CR right before the LF belongs to the line end).
    const len = run + (end - from) - (lf > 0 && piece[lf - 1] === 0x0d ? 1 : 0);
    if (len > MAX_LINE) return { long: true, carried: 0 };
    if (lf < 0) return { long: false, carried: run + (end - from) };
    run = 0;
    from = lf + 1;
  }
}

export function bodyTypeOf(copy: Pick<JournalCopy, 'raw' | 'body'>): '7bit' | '8bit' | 'binary' {
  if (copy.body !== undefined) return copy.body;
  const pieces = Buffer.isBuffer(copy.raw) ? [copy.raw] : copy.raw;
  let eightBit = false;
  let carried = 0;
  for (const p of pieces) {
    if (!eightBit && !isAscii(p)) eightBit = true;
    const l = longLine(p, carried);
    if (l.long) return 'binary';
    carried = l.carried;
  }
  return eightBit ? '8bit' : '7bit';
}
