/**
 * check-intake's SMTP reply parser: single and multi-line replies, fed whole, at every split and
 * byte by byte; lines that are no reply are an error.
 */
import { ReplyParser, replyText } from '../../../lib/cli/smtp-dialogue';

const WIRE = '220 mx ESMTP\r\n250-mx hello\r\n250-STARTTLS\r\n250 SIZE 100\r\n550 5.7.1 no\r\n';
const EXPECTED = [
  { code: 220, lines: ['mx ESMTP'] },
  { code: 250, lines: ['mx hello', 'STARTTLS', 'SIZE 100'] },
  { code: 550, lines: ['5.7.1 no'] },
];

describe('ReplyParser', () => {
  it('parses single and multi-line replies, whatever the split', () => {
    for (let at = 0; at <= WIRE.length; at++) {
      const p = new ReplyParser();
      expect([...p.push(WIRE.slice(0, at)), ...p.push(WIRE.slice(at))]).toEqual(EXPECTED);
    }
    const p = new ReplyParser();
    expect([...WIRE].flatMap((c) => p.push(c))).toEqual(EXPECTED);
  });

  it('accepts bare LF and a code alone', () => {
    expect(new ReplyParser().push('250\n')).toEqual([{ code: 250, lines: [''] }]);
  });

  it('refuses a line that is no reply', () => {
    expect(() => new ReplyParser().push('hello there\r\n')).toThrow('not an SMTP reply line: "hello there"');
  });

  it('replyText writes the reply back as the server sent it', () => {
    expect(replyText(EXPECTED[1]!)).toBe('250-mx hello\n250-STARTTLS\n250 SIZE 100');
  });
});
