/**
 * What a copy's bytes need from the server when the journal builder did not say: '7bit' (ASCII,
 * lines of at most 998 bytes), '8bit' (RFC 6152) or 'binary' (a line over 998 bytes, RFC 3030), by
 * the same long-line test the journal builder uses. Native scans only (Buffer isAscii / indexOf):
 * this runs once per copy. Imports util and this folder only.
 */
import { isAscii } from 'node:buffer';
import { hasLongLine } from '../util/long-line';
import type { JournalCopy } from './types';

export function bodyTypeOf(copy: Pick<JournalCopy, 'raw' | 'body'>): '7bit' | '8bit' | 'binary' {
  if (copy.body !== undefined) return copy.body;
  const pieces = Buffer.isBuffer(copy.raw) ? [copy.raw] : copy.raw;
  if (hasLongLine(pieces)) return 'binary';
  return pieces.every((p) => isAscii(p)) ? '7bit' : '8bit';
}
