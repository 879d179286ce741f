/**
 * The incremental SMTP reply parser: byte fixtures (greeting, multi-line EHLO, enhanced codes, bare
 * LF) split at every offset and fed one byte at a time give the same replies; fast-check for any
 * split of any stream of well-formed replies; malformed lines, code changes and over-long lines
 * are typed protocol errors.
 */
import fc from 'fast-check';
import { SmtpProtocolError } from '../../../lib/smtp/errors';
import { MAX_REPLY_LINE, ReplyParser, replyText, type SmtpReply } from '../../../lib/smtp/reply-parser';
import { splitAt } from '../../support/split-at';

function parseAll(pieces: Buffer[]): SmtpReply[] {
  const p = new ReplyParser();
  return pieces.flatMap((b) => p.push(b));
}

const FIXTURE = Buffer.from(
  '220 mx.intake.test ESMTP Postfix\r\n' +
  '250-mx.intake.test\r\n250-PIPELINING\r\n250-SIZE 10240000\r\n250-8BITMIME\r\n250 CHUNKING\r\n' +
  '250 2.1.0 Ok\r\n' +
  '354 End data with <CR><LF>.<CR><LF>\r\n' +
  '550 5.7.1 <x@y>: Recipient address rejected\r\n' +
  '421 4.3.2 Service shutting down\n' +
  '250\r\n',
  'latin1');

const EXPECTED: SmtpReply[] = [
  { code: 220, lines: ['mx.intake.test ESMTP Postfix'] },
  { code: 250, lines: ['mx.intake.test', 'PIPELINING', 'SIZE 10240000', '8BITMIME', 'CHUNKING'] },
  { code: 250, enhanced: '2.1.0', lines: ['Ok'] },
  { code: 354, lines: ['End data with <CR><LF>.<CR><LF>'] },
  { code: 550, enhanced: '5.7.1', lines: ['<x@y>: Recipient address rejected'] },
  { code: 421, enhanced: '4.3.2', lines: ['Service shutting down'] },
  { code: 250, lines: [''] },
];

describe('ReplyParser', () => {
  it('parses the fixture whole', () => {
    expect(parseAll([FIXTURE])).toEqual(EXPECTED);
  });

  it('gives the same replies for the fixture split at every offset', () => {
    for (let cut = 0; cut <= FIXTURE.length; cut++) {
      expect(parseAll([FIXTURE.subarray(0, cut), FIXTURE.subarray(cut)])).toEqual(EXPECTED);
    }
  });

  it('gives the same replies fed one byte at a time', () => {
    const bytes = [...FIXTURE].map((b) => Buffer.from([b]));
    expect(parseAll(bytes)).toEqual(EXPECTED);
  });

  it('gives the same replies for any split of any stream of replies (property)', () => {
    const line = fc.stringMatching(/^[ -~]{0,60}$/);
    const reply = fc.record({
      code: fc.integer({ min: 200, max: 599 }),
      lines: fc.array(line, { minLength: 1, maxLength: 5 }),
    });
    fc.assert(fc.property(fc.array(reply, { maxLength: 6 }), fc.array(fc.nat(), { maxLength: 8 }), (replies, cuts) => {
      const wire = Buffer.from(replies.map((r) => r.lines.map((l, i) => `${r.code}${i < r.lines.length - 1 ? '-' : ' '}${l}\r\n`).join('')).join(''), 'latin1');
      const whole = parseAll([wire]);
      expect(whole.map((r) => r.code)).toEqual(replies.map((r) => r.code));
      expect(parseAll(splitAt(wire, cuts))).toEqual(whole);
    }), { numRuns: 500 });
  });

  it('on hostile bytes, split anywhere, gives the same replies as whole up to one typed SmtpProtocolError, nothing else (property)', () => {
    const piece = fc.oneof(
      fc.constantFrom('250', '250-', '250 ', '2.0.0 ', '\r\n', '\n', '\r', '-', ' ', '354 go\r\n', '421 4.3.2 bye\r\n', '199 x\r\n', '600 x\r\n', 'x'.repeat(700)),
      fc.uint8Array({ maxLength: 12 }).map((a) => Buffer.from(a).toString('latin1')),
    );
    /** Replies until the first error, and whether one came (push throws it; pushUntilError returns it with the replies before). */
    const run = (pieces: Buffer[]): { replies: SmtpReply[]; error: boolean } => {
      const p = new ReplyParser();
      const replies: SmtpReply[] = [];
      for (const b of pieces) {
        const r = p.pushUntilError(b);
        replies.push(...r.replies);
        if (r.error) {
          expect(r.error).toBeInstanceOf(SmtpProtocolError);
          expect(() => new ReplyParser().push(Buffer.concat(pieces))).toThrow(SmtpProtocolError);
          return { replies, error: true };
        }
      }
      return { replies, error: false };
    };
    fc.assert(fc.property(fc.array(piece, { maxLength: 30 }), fc.array(fc.nat(), { maxLength: 8 }), (ps, cuts) => {
      const wire = Buffer.from(ps.join(''), 'latin1');
      const whole = run([wire]);
      const split = run(splitAt(wire, cuts));
      expect(split.error).toBe(whole.error);
      // Every reply before the first bad line comes out, however the bytes were cut.
      expect(split.replies).toEqual(whole.replies);
      for (const r of split.replies) {
        expect(r.code).toBeGreaterThanOrEqual(200);
        expect(r.code).toBeLessThanOrEqual(599);
      }
    }), { numRuns: 2000 });
  });

  it('keeps an enhanced code only when its class matches the reply code', () => {
    expect(parseAll([Buffer.from('250 5.0.0 odd\r\n')])).toEqual([{ code: 250, lines: ['5.0.0 odd'] }]);
    expect(parseAll([Buffer.from('250 2.0.0\r\n')])).toEqual([{ code: 250, enhanced: '2.0.0', lines: [''] }]);
  });

  it('copies an unfinished line: reusing the caller\'s buffer changes nothing', () => {
    const p = new ReplyParser();
    const buf = Buffer.from('250 2.0.0 O');
    expect(p.push(buf)).toEqual([]);
    expect(p.pending).toBe(true);
    buf.fill(0x41);
    expect(p.push(Buffer.from('k\r\n'))).toEqual([{ code: 250, enhanced: '2.0.0', lines: ['Ok'] }]);
    expect(p.pending).toBe(false);
  });

  it.each([
    ['not a code', 'hello\r\n', 'SMTP_REPLY_MALFORMED'],
    ['a 1xx code', '199 odd\r\n', 'SMTP_REPLY_MALFORMED'],
    ['a 6xx code', '600 odd\r\n', 'SMTP_REPLY_MALFORMED'],
    ['a bad separator', '250_x\r\n', 'SMTP_REPLY_MALFORMED'],
    ['a short line', '25\r\n', 'SMTP_REPLY_MALFORMED'],
    ['the code changing inside a reply', '250-a\r\n251 b\r\n', 'SMTP_REPLY_CODE_CHANGE'],
    ['a line over the cap', `250 ${'x'.repeat(MAX_REPLY_LINE)}\r\n`, 'SMTP_REPLY_TOO_LONG'],
    ['an endless line without LF', `250 ${'x'.repeat(MAX_REPLY_LINE)}`, 'SMTP_REPLY_TOO_LONG'],
    ['too many lines', '250-x\r\n'.repeat(201), 'SMTP_REPLY_TOO_LONG'],
  ])('throws a typed protocol error for %s', (_name, text, code) => {
    let thrown: unknown;
    try {
      parseAll([Buffer.from(text, 'latin1')]);
    } catch (err) {
      thrown = err;
    }
    expect(thrown).toBeInstanceOf(SmtpProtocolError);
    expect((thrown as SmtpProtocolError).code).toBe(code);
  });

  it('an over-long line is refused even when it arrives in small pieces', () => {
    const p = new ReplyParser();
    expect(() => {
      for (let i = 0; i < MAX_REPLY_LINE; i += 100) p.push(Buffer.from('x'.repeat(100)));
    }).toThrow(SmtpProtocolError);
  });

  it('replyText gives the reply as received, lines joined by " / "', () => {
    expect(replyText(EXPECTED[4]!)).toBe('550 5.7.1 <x@y>: Recipient address rejected');
    expect(replyText({ code: 250, lines: ['a', 'b'] })).toBe('250 a / 250 b');
    expect(replyText({ code: 250, enhanced: '2.0.0', lines: [''] })).toBe('250 2.0.0');
  });
});
