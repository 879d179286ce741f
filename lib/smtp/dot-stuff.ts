/**
 * SMTP DATA transparency (RFC 5321 4.5.2) for one chunk of a message: a dot at the start of a line is
 * doubled, and bare CR and bare LF become CRLF (a dot after a bare CR is doubled too, so a receiver
 * that ends lines at a lone CR can never see "<CR>.<CR>" as the end of data: SMTP smuggling).
 * Byte for byte the same output as nodemailer's own DataStream, which walks every byte in
 * JavaScript; this one lets Buffer.indexOf find the line ends, about ten times faster on a
 * megabyte. Pure; imports nothing.
 */

const CR = 0x0d;
const LF = 0x0a;
const DOT = 0x2e;

/** `previous` before the first chunk of a message: the data starts at the start of a line. */
export const START_OF_DATA = -1;

const INSERT_CR = Buffer.from('\r');
const INSERT_LF = Buffer.from('\n');
const INSERT_LF_DOT = Buffer.from('\n.');
const INSERT_DOT = Buffer.from('.');

/**
 * The chunk as it goes on the wire. `previous` is the last byte of the chunk before (or
 * START_OF_DATA); the result is `chunk` itself when nothing needs changing.
 */
export function dotStuff(chunk: Buffer, previous: number): Buffer {
  const len = chunk.length;
  if (len === 0) return chunk;
  const parts: Buffer[] = [];
  let total = 0;
  let from = 0;
  // Insert `what` before chunk[at]; insertions come in increasing `at`.
  const insert = (at: number, what: Buffer): void => {
    if (at > from) {
      const piece = chunk.subarray(from, at);
      parts.push(piece);
      total += piece.length;
    }
    parts.push(what);
    total += what.length;
    from = at;
  };

  // The first byte, whose predecessor is in the chunk before.
  const first = chunk[0]!;
  if (previous === CR && first !== LF) insert(0, first === DOT ? INSERT_LF_DOT : INSERT_LF);
  else if (first === DOT && (previous === LF || previous === START_OF_DATA)) insert(0, INSERT_DOT);

  let nextCr = chunk.indexOf(CR);
  let nextLf = chunk.indexOf(LF);
  while (nextCr !== -1 || nextLf !== -1) {
    if (nextCr !== -1 && (nextLf === -1 || nextCr < nextLf)) {
      const i = nextCr;
      if (i + 1 >= len) break; // a CR at the end: the next chunk (or the end of data) decides
      if (chunk[i + 1] === LF) {
        // CRLF: only a dot right after it matters (beyond the chunk: the next chunk's first byte).
        if (i + 2 < len && chunk[i + 2] === DOT) insert(i + 2, INSERT_DOT);
        nextCr = chunk.indexOf(CR, i + 2);
        nextLf = chunk.indexOf(LF, i + 2);
      } else {
        insert(i + 1, chunk[i + 1] === DOT ? INSERT_LF_DOT : INSERT_LF);
        nextCr = chunk.indexOf(CR, i + 1);
      }
    } else {
      const i = nextLf;
      const before = i > 0 ? chunk[i - 1]! : previous;
      if (before !== CR) insert(i, INSERT_CR);
      if (i + 1 < len && chunk[i + 1] === DOT) insert(i + 1, INSERT_DOT);
      nextLf = chunk.indexOf(LF, i + 1);
    }
  }
  if (parts.length === 0) return chunk;
  if (from < len) {
    const piece = chunk.subarray(from);
    parts.push(piece);
    total += piece.length;
  }
  return Buffer.concat(parts, total);
}

/** What ends the data after a message whose last byte was `last`: the line is closed, then ".". */
export function endOfData(last: number): Buffer {
  if (last === LF) return Buffer.from('.\r\n');
  if (last === CR) return Buffer.from('\n.\r\n');
  return Buffer.from('\r\n.\r\n');
}
