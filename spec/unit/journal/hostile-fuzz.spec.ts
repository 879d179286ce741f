/**
 * buildJournal with hostile headers and envelopes (fast-check): raw 8-bit bytes, bare CR/LF and NUL,
 * encoded-words that decode to line breaks and fake report lines, planted boundaries, forged
 * remote-IP headers. Every journal must pass the strict un-journaling rules (spec/support/unjournal),
 * keep its wrapper header ASCII with lines within 998 octets (76 where encoded-words are), carry the
 * recipients exactly, and parse in mailparser with the original attached.
 */
import fc from 'fast-check';
import { simpleParser } from 'mailparser';
import { buildJournal } from '../../../lib/journal';
import type { HeaderField } from '../../../lib/message';
import { makeMessage } from '../../support/captured-message';
import { unjournal } from '../../support/unjournal';

const b64 = (s: string) => Buffer.from(s, 'utf8').toString('base64');
/** Pieces a sender would use to break out of a header or report line. */
const HOSTILE = [
  '\r\n', '\n', '\r', '\0', '\r\nBcc: evil@attacker.example', '\r\n\r\n', 'Recipient: evil@attacker.example',
  `=?UTF-8?B?${b64('\r\nRecipient: evil@attacker.example')}?=`, '=?UTF-8?Q?=0D=0ASender:_x@y?=', `=?UTF-8?B?${b64('ü\u2028\u0085x')}?=`,
  '--tdc-Q1.1', '--tdc-Q1.1--', '=?x?B?', '"', '<', '>', '@', ',', '(', ')', 'é', '\xff\xfe', '\t', ' ', 'a@b.example', 'Ωmega ',
];
const piece = fc.oneof(fc.constantFrom(...HOSTILE), fc.string({ maxLength: 12 }), fc.uint8Array({ maxLength: 8 }).map((a) => Buffer.from(a).toString('latin1')));
const value = fc.array(piece, { maxLength: 8 }).map((ps) => ` ${ps.join('')}`);
const name = fc.constantFrom('From', 'Sender', 'Subject', 'Message-ID', 'X-IronPort-RemoteIP', 'To', 'Content-Type', 'X-Other');

describe('buildJournal with hostile headers (property)', () => {
  it('always yields a journal the strict parser and mailparser accept, recipients intact', async () => {
    await fc.assert(fc.asyncProperty(
      fc.array(fc.tuple(name, value), { maxLength: 8 }),
      fc.array(fc.constantFrom('bob@example.org', 'carol@example.org', 'x\r\nBcc: y@evil.example', 'ü@example.org'), { minLength: 1, maxLength: 3 }),
      fc.constantFrom('alice@partner.example', '', 'mallory@x\r\nBcc: y', 'jürgen@partner.example'),
      async (fields, recipients, sender) => {
        const headers: HeaderField[] = fields.map(([n, v]) => ({ name: n, value: v.replace(/\r?\n(?![ \t])/g, '\n ') }));
        const message = makeMessage({ headers, sender, body: [Buffer.from('body\r\n.\r\n--tdc-Q1.1\r\n', 'latin1')] });
        const journal = buildJournal({
          message, intakeAddress: 'journal@intake.example', recipients, policies: ['DEFAULT'], hostname: 'gw1.example.org',
          date: new Date(Date.UTC(2026, 10, 23, 18, 20, 1)), copyId: 'Q1.1', remoteIpHeader: 'X-IronPort-RemoteIP',
        });
        const u = unjournal(journal);
        expect(u.recipients).toEqual(recipients.map((r) => r.replace(/[\r\n]/g, '')));
        expect(u.sender).not.toBe('');
        const wrapperLines = u.wrapperHeader.split('\r\n');
        for (const l of wrapperLines) expect(Buffer.byteLength(l, 'latin1')).toBeLessThanOrEqual(998);
        // RFC 2047 §2 limits the lines of our encoded wrapper Subject (not the original's own words, copied as sent).
        const subject = u.wrapperHeader.split(/\r\n(?![ \t])/).find((f) => f.startsWith('Subject:')) ?? '';
        if (/^Subject:(?:\r\n)? =\?UTF-8\?B\?[A-Za-z0-9+/=]*\?=(?:\r\n =\?UTF-8\?B\?[A-Za-z0-9+/=]*\?=)*$/.test(subject)) for (const l of subject.split('\r\n')) expect(l.length).toBeLessThanOrEqual(76);
        // The original carries exactly one remote-IP header, ours, first after Return-Path.
        const originalHead = u.original.subarray(0, u.original.indexOf('\r\n\r\n')).toString('latin1');
        expect(originalHead.split('\r\n').filter((l) => /^X-IronPort-RemoteIP:/i.test(l))).toEqual(['X-IronPort-RemoteIP: 203.0.113.25']);
        const parsed = await simpleParser(journal);
        expect(parsed.attachments.some((a) => a.contentType === 'message/rfc822')).toBe(true);
        expect(parsed.headerLines.some((h) => h.key === 'x-ms-journal-report')).toBe(true);
      },
    ), { numRuns: 300 });
  });
});
