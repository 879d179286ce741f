/**
 * Header text for the report: RFC 2047 decoding (adjacent words, split characters, unknown charsets,
 * encoded line breaks), 8-bit bytes made valid UTF-8, RFC 2047 encoding, quoted-printable, the
 * From/Sender address, and long-line detection across chunks.
 */
import fc from 'fast-check';
import { isUtf8 } from 'node:buffer';
import { simpleParser } from 'mailparser';
import { buildJournal, decodeHeaderText, firstAddress, reportLines } from '../../../lib/journal';
import { hasLongLine } from '../../../lib/util/long-line';
import { encodedHeaderField, quotedPrintable } from '../../../lib/journal/header-text';
import { makeMessage } from '../../support/captured-message';
import { unjournal } from '../../support/unjournal';

const bytes = (s: string) => Buffer.from(s, 'utf8').toString('latin1'); // UTF-8 text as wire bytes

describe('decodeHeaderText', () => {
  it.each([
    [' =?UTF-8?B?R3LDvMOfZQ==?=', 'Grüße'],
    [' =?iso-8859-1?q?Gr=FC=DFe_aus?= K=F6ln', 'Grüße aus K=F6ln'],
    [' =?UTF-8?Q?=E2=80?= =?UTF-8?Q?=93?=', '–'], // one character split across two words
    [' =?utf-8?q?a?=\n =?iso-8859-1?q?=FC?=', 'aü'],
    [' plain =?x-unknown?q?kept?= text', 'plain =?x-unknown?q?kept?= text'],
    [' =?UTF-8?Q?Pay=0D=0ABcc:_x@evil.example?=', 'PayBcc: x@evil.example'],
    [' =?UTF-8?B?//79?=', '\ufffd\ufffd\ufffd'], // bytes that are no UTF-8 become U+FFFD
    [` ${bytes('Köln')}`, 'Köln'],
    [' K\xf6ln', 'Köln'], // not UTF-8: read as windows-1252
    [' a\x00b\rc', 'abc'],
  ])('%j → %j', (raw, text) => {
    expect(decodeHeaderText(raw)).toBe(text);
  });

  it('always gives one line of valid UTF-8', () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 80 }), (a) => {
      const t = decodeHeaderText(Buffer.from(a).toString('latin1'));
      expect(/[\r\n\0]/.test(t)).toBe(false);
      expect(isUtf8(Buffer.from(t, 'utf8'))).toBe(true);
    }), { numRuns: 500 });
  });
});

describe('firstAddress', () => {
  it.each([
    [' Alice <alice@partner.example>', 'alice@partner.example'],
    [' "Boss, The" <boss@partner.example>', 'boss@partner.example'],
    [' alice@partner.example (Alice <not@this>)', 'alice@partner.example'],
    [' MAILER-DAEMON@mx.example (Mail Delivery System)', 'MAILER-DAEMON@mx.example'],
    [' a@x.example, b@y.example', 'a@x.example'],
    [' Team: c@z.example, d@z.example;', 'c@z.example'],
    [' <@relay.example:e@w.example>', 'e@w.example'],
    [' "john doe"@example.org', '"john doe"@example.org'],
    [' <>', undefined],
    [' undisclosed-recipients:;', undefined],
    [' MAILER-DAEMON', undefined],
    [' Mallory <m@x.example>\r\nBcc: v@y.example', 'm@x.example'],
  ])('%j → %j', (raw, address) => {
    expect(firstAddress(raw)).toBe(address);
  });
});

describe('the report lines', () => {
  const lines = (headers: [string, string][], sender = '') =>
    reportLines(makeMessage({ sender, headers: headers.map(([name, value]) => ({ name, value })) }), ['bob@example.org']);

  it('Sender: the Sender header, else From, never the envelope; On-Behalf-Of only when they differ', () => {
    expect(lines([['From', ' a@x.example']], 'bounces@list.example')[0]).toBe('Sender: a@x.example');
    expect(lines([['From', ' a@x.example'], ['Sender', ' A@X.example']]).slice(0, 2)).toEqual(['Sender: A@X.example', 'Subject:']);
    expect(lines([['From', ' a@x.example'], ['Sender', ' s@x.example']]).slice(0, 2)).toEqual(['Sender: s@x.example', 'On-Behalf-Of: a@x.example']);
    expect(lines([['Sender', ' <>'], ['From', ' a@x.example']])[0]).toBe('Sender: a@x.example');
  });

  it("Exchange's literals when there is no address and no Message-ID", () => {
    expect(lines([['From', ' undisclosed-recipients:;']], 'env@x.example')).toEqual([
      'Sender: Unspecified Address', 'Subject:', 'Message-Id: Unknown Message-ID', 'Recipient: bob@example.org',
    ]);
  });

  it('a long subject stays within 998 octets per line, cut on a character boundary', () => {
    const [, subject] = lines([['From', ' a@x.example'], ['Subject', ` ${bytes('ü'.repeat(800))}`]]);
    expect(Buffer.byteLength(subject!, 'utf8')).toBeLessThanOrEqual(998);
    expect(subject!.endsWith('ü')).toBe(true);
  });
});

describe('decodeHeaderText and line separators beyond CR and LF', () => {
  it('drops NEL, U+2028, U+2029 and C1 controls, so no Unicode-aware line splitter sees a second report line', () => {
    const word = (t: string) => `=?UTF-8?B?${Buffer.from(t, 'utf8').toString('base64')}?=`;
    for (const sep of ['\u0085', '\u2028', '\u2029', '\u009b']) {
      const text = decodeHeaderText(` ${word(`hi${sep}Recipient: evil@attacker.example`)}`);
      expect(text).toBe('hiRecipient: evil@attacker.example');
      expect(`Subject: ${text}`.split(/\r\n|[\n\r\x85\u2028\u2029]/)).toHaveLength(1);
    }
  });
});

describe('encodings', () => {
  it('quoted-printable: lines within 76 characters, decodes to the text', () => {
    fc.assert(fc.property(fc.array(fc.string({ unit: 'grapheme', maxLength: 200 }), { minLength: 1, maxLength: 5 }), (ls) => {
      const text = `${ls.map((l) => l.replace(/[\r\n]/g, '')).join('\r\n')}\r\n`;
      const qp = quotedPrintable(text);
      for (const l of qp.split('\r\n')) expect(l.length).toBeLessThanOrEqual(76);
      const decoded = Buffer.from(qp.replace(/=\r\n/g, '').replace(/=([0-9A-F]{2})/g, (_, h: string) => String.fromCharCode(parseInt(h, 16))), 'latin1');
      expect(decoded.toString('utf8')).toBe(text);
    }), { numRuns: 300 });
  });

  it('an RFC 2047 wrapper header is ASCII, words of at most 75 characters, and mailparser reads the text back', async () => {
    const text = 'Grüße aus Köln – Rechnung №4711 ✓ '.repeat(5).trim();
    const field = encodedHeaderField('Subject', text);
    expect(/^[\x20-\x7e\r\n]*$/.test(field)).toBe(true);
    for (const w of field.match(/=\?[^?]+\?B\?[^?]*\?=/g)!) expect(w.length).toBeLessThanOrEqual(75);
    const parsed = await simpleParser(Buffer.from(`${field}\r\n\r\nx`, 'latin1'));
    expect(parsed.subject).toBe(text);
  });

  it('an RFC 2047 wrapper header keeps every line, the first with its field name, within 76 characters (RFC 2047 2)', async () => {
    await fc.assert(fc.asyncProperty(fc.string({ unit: 'grapheme', minLength: 1, maxLength: 120 }), async (t) => {
      const text = `é${t.replace(/[\r\n]/g, '')}`.trim();
      const field = encodedHeaderField('Subject', text);
      for (const l of field.split('\r\n')) expect(l.length).toBeLessThanOrEqual(76);
      const parsed = await simpleParser(Buffer.from(`${field}\r\n\r\nx`, 'latin1'));
      expect(parsed.subject).toBe(text);
    }), { numRuns: 200 });
  });

  it('a journal of a message with 8-bit headers has an ASCII wrapper and a quoted-printable report', () => {
    const msg = makeMessage({ headers: [{ name: 'From', value: ` ${bytes('Jürgen <j@x.example>')}` }, { name: 'Subject', value: ` ${bytes('Grüße')}` }] });
    const journal = buildJournal({
      message: msg, intakeAddress: 'i@intake.example', recipients: ['bob@example.org'], policies: ['DEFAULT'],
      hostname: 'gw1.example.org', date: new Date(0), copyId: 'Q.1', remoteIpHeader: 'X-IronPort-RemoteIP',
    });
    const u = unjournal(journal);
    expect(u.reportEncoding).toBe('quoted-printable');
    expect(u.subject).toBe('Grüße');
    expect(u.originalEncoding).toBe('8bit');
  });
});

describe('hasLongLine', () => {
  it('finds a line over 998 octets wherever the chunks are cut, and a CRLF is not part of the line', () => {
    const ok = Buffer.from(`${'a'.repeat(998)}\r\nb\r\n`, 'latin1');
    const long = Buffer.from(`x\r\n${'a'.repeat(999)}\r\n`, 'latin1');
    fc.assert(fc.property(fc.array(fc.nat(), { maxLength: 6 }), (cuts) => {
      const split = (b: Buffer) => {
        const at = [...new Set(cuts.map((c) => c % (b.length + 1)))].sort((p, q) => p - q);
        const out: Buffer[] = [];
        let from = 0;
        for (const c of at) { out.push(b.subarray(from, c)); from = c; }
        out.push(b.subarray(from));
        return out;
      };
      expect(hasLongLine(split(ok))).toBe(false);
      expect(hasLongLine(split(long))).toBe(true);
    }), { numRuns: 500 });
    expect(hasLongLine([Buffer.from('a'.repeat(999))])).toBe(true);
    expect(hasLongLine([Buffer.from('a'.repeat(998))])).toBe(false);
  });

  it('agrees with a line-by-line reference for lines near the limit, CRLF or bare LF, cut anywhere (property)', () => {
    const line = fc.tuple(fc.integer({ min: 990, max: 1002 }), fc.constantFrom('\r\n', '\n', '\r', ''));
    fc.assert(fc.property(fc.array(line, { minLength: 1, maxLength: 4 }), fc.array(fc.nat(), { maxLength: 5 }), (lines, cuts) => {
      const text = lines.map(([n, end]) => `${'a'.repeat(n)}${end}`).join('');
      const reference = text.split('\n').some((l, i, all) => (i < all.length - 1 && l.endsWith('\r') ? l.length - 1 : l.length) > 998);
      const buf = Buffer.from(text, 'latin1');
      const at = [...new Set(cuts.map((c) => c % (buf.length + 1)))].sort((p, q) => p - q);
      const parts: Buffer[] = [];
      let from = 0;
      for (const c of at) { parts.push(buf.subarray(from, c)); from = c; }
      parts.push(buf.subarray(from));
      expect(hasLongLine(parts)).toBe(reference);
    }), { numRuns: 1000 });
  });

  it('a line ended by a bare LF has no CR to spare: 999 octets before it are too long, on the wire 999 + CRLF', () => {
    const long = Buffer.from(`x\n${'a'.repeat(999)}\nb\n`, 'latin1');
    const ok = Buffer.from(`x\n${'a'.repeat(998)}\nb\n`, 'latin1');
    for (let cut = 0; cut <= long.length; cut++) {
      expect(hasLongLine([long.subarray(0, cut), long.subarray(cut)])).toBe(true);
      expect(hasLongLine([ok.subarray(0, Math.min(cut, ok.length)), ok.subarray(Math.min(cut, ok.length))])).toBe(false);
    }
  });
});
