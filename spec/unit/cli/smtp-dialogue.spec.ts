/**
 * check-intake's transcript writes each reply back line by line as the server sent it, enhanced
 * status code included (lib/smtp's parser, tested in spec/unit/smtp, splits it off).
 */
import { ReplyParser } from '../../../lib/smtp/reply-parser';
import { wireLines } from '../../../lib/cli/smtp-dialogue';

describe('wireLines', () => {
  it('multi-line and enhanced-code replies come back as sent', () => {
    const wire = '250-mx hello\r\n250-STARTTLS\r\n250 SIZE 100\r\n550 5.7.1 no null senders\r\n250 2.0.0\r\n';
    const replies = new ReplyParser().push(Buffer.from(wire, 'latin1'));
    expect(replies.flatMap(wireLines)).toEqual(['250-mx hello', '250-STARTTLS', '250 SIZE 100', '550 5.7.1 no null senders', '250 2.0.0']);
  });
});
