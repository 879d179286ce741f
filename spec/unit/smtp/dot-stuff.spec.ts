/**
 * Our DATA dot-stuffing (lib/smtp/dot-stuff.ts) against nodemailer's own DataStream transform, kept
 * as the test oracle: the same bytes for arbitrary inputs rich in CR, LF and dots, cut anywhere;
 * plus the RFC 5321 rules spelled out. This spec never patches nodemailer.
 */
import fc from 'fast-check';
import { dotStuff, endOfData, START_OF_DATA } from '../../../lib/smtp/dot-stuff';
import { dataStreamTransform, through } from '../../support/nodemailer-oracle';
import { splitAt } from '../../support/split-at';

/** Ours, without any stream: chunk by chunk, then the end of data. */
function ours(pieces: Buffer[]): string {
  let last = START_OF_DATA;
  const out: Buffer[] = [];
  for (const p of pieces) {
    if (p.length === 0) continue;
    out.push(dotStuff(p, last));
    last = p[p.length - 1]!;
  }
  out.push(endOfData(last));
  return Buffer.concat(out).toString('latin1');
}

/** nodemailer's own transform, untouched (nothing in this spec installs ours over it). */
const reference = dataStreamTransform();
const mailBytes = fc.array(fc.constantFrom(0x0d, 0x0a, 0x2e, 0x41, 0x20, 0x00, 0xff), { maxLength: 300 }).map((a) => Buffer.from(a));

describe('dotStuff', () => {
  it('doubles a dot at the start of every line, first line included', () => {
    expect(ours([Buffer.from('.a\r\n.\r\n..b\r\nc.d\r\n')])).toBe('..a\r\n..\r\n...b\r\nc.d\r\n.\r\n');
  });

  it('turns bare CR and bare LF into CRLF, and doubles a dot after a bare CR (no "<CR>.<CR>" smuggling)', () => {
    expect(ours([Buffer.from('a\rb\nc\r.\r')])).toBe('a\r\nb\r\nc\r\n..\r\n.\r\n');
  });

  it('returns the very chunk when nothing changes (no copy for ordinary CRLF text)', () => {
    const chunk = Buffer.from('Subject: x\r\n\r\nbody line\r\n');
    expect(dotStuff(chunk, START_OF_DATA)).toBe(chunk);
  });

  it('looks back across chunk boundaries: CR|LF, CRLF|., CR|.', () => {
    expect(ours([Buffer.from('a\r'), Buffer.from('\nb')])).toBe('a\r\nb\r\n.\r\n');
    expect(ours([Buffer.from('a\r\n'), Buffer.from('.b\r\n')])).toBe('a\r\n..b\r\n.\r\n');
    expect(ours([Buffer.from('a\r'), Buffer.from('.b\r\n')])).toBe('a\r\n..b\r\n.\r\n');
  });

  it('gives nodemailer\'s bytes for any input cut anywhere (property)', () => {
    fc.assert(
      fc.property(mailBytes, fc.array(fc.nat(), { maxLength: 6 }), (input, cuts) => {
        const pieces = splitAt(input, cuts);
        const theirs = through(reference, pieces);
        expect(ours(pieces)).toBe(theirs.bytes);
      }),
      { numRuns: 2000 },
    );
  });
});

