/**
 * buildJournal beyond the golden files: a 5 MB body, 8-bit detection, determinism, boundary choice,
 * the sender-IP header sources, input validation, and the one-line/line-length helpers.
 */
import fc from 'fast-check';
import { simpleParser } from 'mailparser';
import { buildJournal, chooseBoundary, occursIn, rfc5322Date, singleLine, type JournalInput } from '../../../lib/journal';
import { cutBytes, headerField, reportLine } from '../../../lib/journal/sanitize';
import { originalMessage, type ClientInfo } from '../../../lib/message';
import { TdcError } from '../../../lib/util/errors';
import { makeMessage } from '../../support/captured-message';

function input(over: Partial<JournalInput> = {}): JournalInput {
  return {
    message: makeMessage(), intakeAddress: 'global@intake.example', recipients: ['bob@example.org'], policies: ['DEFAULT'],
    hostname: 'gw1.example.org', date: new Date(Date.UTC(2026, 10, 23, 18, 20, 1)), copyId: 'Q1.1', remoteIpHeader: 'X-IronPort-RemoteIP', ...over,
  };
}

describe('a 5 MB message', () => {
  const line = 'All work and no play makes Jack a dull boy. 0123456789 abcdefghijklmnopqrstuvwxyz\r\n';
  const body = Buffer.from(line.repeat(Math.ceil((5 * 1024 * 1024) / line.length)), 'latin1');
  const msg = makeMessage({
    headers: [{ name: 'Subject', value: ' big' }, { name: 'Message-ID', value: ' <big@partner.example>' }],
    body: [body.subarray(0, 65535), body.subarray(65535, 3_000_000), body.subarray(3_000_000)],
  });

  it('embeds the original byte for byte and keeps the journal structure', async () => {
    const started = Date.now();
    const journal = buildJournal(input({ message: msg }));
    expect(Date.now() - started).toBeLessThan(2000);
    const original = originalMessage(msg);
    expect(journal.length).toBeGreaterThan(5 * 1024 * 1024);
    const top = 'Return-Path: <alice@partner.example>\r\nX-IronPort-RemoteIP: 203.0.113.25\r\n';
    const marker = Buffer.from(`Content-Transfer-Encoding: 7bit\r\n\r\n${top}`, 'latin1');
    const start = journal.indexOf(marker) + marker.length;
    expect(start).toBeGreaterThan(marker.length);
    const end = start + original.length;
    expect(journal.subarray(start, end).equals(original)).toBe(true);
    expect(journal.subarray(end).toString('latin1')).toBe('\r\n--tdc-Q1.1--\r\n');
    const parsed = await simpleParser(journal);
    expect(parsed.attachments).toHaveLength(1);
    expect(parsed.attachments[0]!.content.length).toBe(original.length + top.length);
    expect(parsed.text).toContain('Message-Id: <big@partner.example>');
  });

  it('is 8bit as soon as one byte is 0x80 or above, even at the very end', () => {
    const last = Buffer.from(body);
    last[last.length - 3] = 0xe9;
    const j = buildJournal(input({ message: makeMessage({ body: [last] }) })).toString('latin1');
    expect(j).toContain('Content-Type: message/rfc822\r\nContent-Disposition: attachment\r\nContent-Transfer-Encoding: 8bit\r\n');
    expect(j).toMatch(/^Content-Type: multipart\/mixed; boundary="tdc-Q1\.1"\r\nContent-Transfer-Encoding: 8bit\r\n\r\n/m);
  });
});

describe('determinism and boundaries', () => {
  it('the same input gives the same bytes; the date only changes the Date line', () => {
    const a = buildJournal(input());
    expect(buildJournal(input()).equals(a)).toBe(true);
    const b = buildJournal(input({ date: new Date(Date.UTC(2027, 0, 2, 3, 4, 5)) })).toString('latin1');
    expect(b.replace('Date: Sat, 02 Jan 2027 03:04:05 +0000', 'Date: Mon, 23 Nov 2026 18:20:01 +0000')).toBe(a.toString('latin1'));
  });

  it('never uses a boundary that occurs in the content, and picks the same one every time', () => {
    const planted = Buffer.from('x\r\n--tdc-Q1.1\r\n--tdc-Q1.1-0000000000000000\r\n', 'latin1');
    const b = chooseBoundary('Q1.1', [planted]);
    expect(b).toMatch(/^tdc-Q1\.1-[0-9a-f]{16}$/);
    expect(planted.includes(b)).toBe(false);
    expect(chooseBoundary('Q1.1', [planted])).toBe(b);
    expect(chooseBoundary('Q1.1', [Buffer.from('clean')])).toBe('tdc-Q1.1');
  });

  it('sees a boundary that straddles body chunks, even across chunks shorter than it', () => {
    const chunks = ['x\r\n--td', 'c', '-Q1', '.1\r\n'].map((t) => Buffer.from(t, 'latin1'));
    expect(occursIn(chunks, 'tdc-Q1.1')).toBe(true);
    expect(chooseBoundary('Q1.1', chunks)).not.toBe('tdc-Q1.1');
    fc.assert(fc.property(
      fc.array(fc.uint8Array({ maxLength: 6 }).map((a) => Buffer.from(a.map((v) => 0x61 + (v % 3)))), { maxLength: 8 }),
      fc.stringMatching(/^[abc]{1,5}$/),
      (parts, needle) => occursIn(parts, needle) === Buffer.concat(parts).includes(needle, 0, 'latin1'),
    ), { numRuns: 1000 });
  });

  it('keeps copy ids and queue ids to safe characters', () => {
    const j = buildJournal(input({ copyId: 'a b<c>.1', message: makeMessage({ queueId: 'Q;1 x' }) })).toString('latin1');
    expect(j).toContain('Message-ID: <tdc.a_b_c_.1@gw1.example.org>\r\n');
    expect(j).toContain('X-TDC-Journal: gw1.example.org; queue-id=Q_1_x; copy-id=a_b_c_.1; policy=DEFAULT\r\n');
  });

  it.each([
    ['hostname', { hostname: 'gw1.example.org\r\nBcc: x' }],
    ['intake address', { intakeAddress: 'a@b\r\nBcc: x@y' }],
    ['remote IP header name', { remoteIpHeader: 'X-IP:' }],
    ['date', { date: new Date(NaN) }],
  ])('refuses an invalid %s (a settings bug, never message content)', (what, over) => {
    expect(() => buildJournal(input(over as Partial<JournalInput>))).toThrow(TdcError);
    expect(() => buildJournal(input(over as Partial<JournalInput>))).toThrow(new RegExp(`invalid ${what}`));
  });
});

describe('the sender-IP header', () => {
  // The milter maps the MTA's connect info and macros onto the message's client IP.
  const withClient = (client: ClientInfo | undefined, macros: Record<string, string> = {}) => makeMessage({ macros, client });

  it.each([
    [{ hostname: 'h', family: 'inet', address: '192.0.2.1' }, {}, '192.0.2.1'],
    [{ hostname: 'h', family: 'inet6', address: '2001:DB8::1' }, {}, '2001:db8::1'],
    [{ hostname: 'h', family: 'inet6', address: '::ffff:192.0.2.9' }, {}, '192.0.2.9'],
    [{ hostname: 'h', family: 'unix', address: '/run/sock' }, { client_addr: '192.0.2.7' }, '192.0.2.7'],
    [undefined, { client_addr: 'IPv6:2001:db8::7' }, '2001:db8::7'],
    [undefined, { client_addr: 'garbage\r\nX: y' }, undefined],
    [{ hostname: 'h', family: 'unknown' }, {}, undefined],
  ])('client %j, macros %j → %s', (client, macros, expected) => {
    expect(withClient(client as ClientInfo | undefined, macros).clientIp).toBe(expected);
  });

  it('is left out when the client IP is unknown', () => {
    const j = buildJournal(input({ message: withClient(undefined) })).toString('latin1');
    expect(j).not.toContain('X-IronPort-RemoteIP');
    expect(j).toContain('Content-Transfer-Encoding: 7bit\r\n\r\nReturn-Path: <alice@partner.example>\r\nSubject: Hi\r\n');
  });

  it('uses the configured header name', () => {
    expect(buildJournal(input({ remoteIpHeader: 'X-Sender-IP' })).toString('latin1')).toContain('\r\n\r\nReturn-Path: <alice@partner.example>\r\nX-Sender-IP: 203.0.113.25\r\nSubject: Hi\r\n');
  });
});

describe('one-line helpers', () => {
  it('singleLine unfolds and drops CR, LF and NUL', () => {
    expect(singleLine(' a\n\tb\r\n c\rd\ne\0f ')).toBe('a\tb cdef');
  });

  it('formats RFC 5322 dates in UTC', () => {
    expect(rfc5322Date(new Date(Date.UTC(2026, 0, 4, 5, 6, 7)))).toBe('Sun, 04 Jan 2026 05:06:07 +0000');
  });

  it('cuts without splitting a UTF-8 sequence', () => {
    const s = Buffer.from('aé', 'utf8').toString('latin1'); // 'a' + 2 bytes
    expect(cutBytes(s, 2)).toBe('a');
    expect(cutBytes(s, 3)).toBe(s);
  });

  it('report lines stay within 998 octets', () => {
    expect(reportLine('Subject', 'x'.repeat(2000))).toHaveLength(998);
  });

  it('folds a long wrapper header at whitespace, each line within 998 octets, unfolding to the value', () => {
    const value = Array.from({ length: 300 }, (_, i) => `word${i}`).join(' ');
    const folded = headerField('Subject', value);
    const lines = folded.split('\r\n');
    expect(lines.length).toBeGreaterThan(1);
    for (const l of lines) expect(l.length).toBeLessThanOrEqual(998);
    for (const l of lines.slice(1)) expect(l).toMatch(/^ \S/);
    expect(folded.replace(/\r\n/g, '')).toBe(`Subject: ${value}`);
    const long = headerField('Subject', 'y'.repeat(3000));
    expect(long.split('\r\n').every((l) => l.length <= 998)).toBe(true);
  });

  it('a hostile long subject cannot add a header to the wrapper', async () => {
    const evil = `${'z '.repeat(600)}\r\nBcc: victim@example.org`;
    const j = buildJournal(input({ message: makeMessage({ headers: [{ name: 'Subject', value: ` ${evil}` }] }) }));
    const parsed = await simpleParser(j);
    expect(parsed.headerLines.map((h) => h.key)).not.toContain('bcc');
    expect(parsed.bcc).toBeUndefined();
  });
});
