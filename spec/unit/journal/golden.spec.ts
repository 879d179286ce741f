/**
 * Journal golden files: .eml in (as Postfix hands it to a milter with HDR_LEADSPC) → the expected
 * journal .eml out, byte for byte. `UPDATE_GOLDEN=1 npx jest spec/unit/journal` rewrites the expected
 * files; review them by eye before committing. Every golden copy is then read back twice: by a strict
 * re-implementation of the un-journaling rules (spec/support/unjournal.ts) and by mailparser.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { simpleParser, type ParsedMail } from 'mailparser';
import { buildJournal, describeOriginal, type JournalInput } from '../../../lib/journal';
import { originalMessage, type CapturedMessage } from '../../../lib/message';
import { capturedFromEml, type EnvelopeParts } from '../../support/captured-message';
import { unjournal, type Unjournaled } from '../../support/unjournal';

const DIR = path.resolve(__dirname, '../../fixtures/journal');
const UPDATE = process.env['UPDATE_GOLDEN'] === '1';

interface Case {
  name: string;
  envelope: EnvelopeParts;
  input: Omit<JournalInput, 'message' | 'hostname' | 'date' | 'remoteIpHeader'>;
  /** What the parsed wrapper must show. */
  subject: string;
  /** The report's lines, decoded. */
  report: string[];
  /** The message/rfc822 part's transfer encoding (and the copy's `body`). */
  encoding: '7bit' | '8bit' | 'binary';
}

/** A case with one recipient, bob@example.org, journaled to the global intake under DEFAULT. */
function toBob(name: string, queueId: string, envelope: Omit<EnvelopeParts, 'queueId' | 'recipients'>, subject: string,
  report: string[], encoding: Case['encoding'] = '7bit'): Case {
  return {
    name, envelope: { ...envelope, queueId, recipients: ['bob@example.org'] },
    input: { intakeAddress: 'global@intake.example', recipients: ['bob@example.org'], policies: ['DEFAULT'], copyId: `${queueId || 'NOQUEUE-1'}.1` },
    subject, report: [...report, 'Recipient: bob@example.org'], encoding,
  };
}

const CASES: Case[] = [
  {
    name: 'ordinary',
    envelope: { queueId: '4Xk2Lq0yZmz9vT', sender: 'alice@partner.example', recipients: ['bob@example.org', 'carol@example.org', 'dave@example.org'] },
    input: { intakeAddress: '33c48e-27xp9-05ecb4@beta.cmd.cisco.com', recipients: ['bob@example.org', 'carol@example.org'], policies: ['DEFAULT'], copyId: '4Xk2Lq0yZmz9vT.1' },
    subject: 'Invoice 4711 for November',
    report: ['Sender: alice@partner.example', 'Subject: Invoice 4711 for November', 'Message-Id: <abc123@partner.example>', 'Recipient: bob@example.org', 'Recipient: carol@example.org'],
    encoding: '7bit',
  },
  {
    name: 'utf8-headers',
    envelope: { queueId: '5Ab3Mn1', sender: 'juergen@partner.example', recipients: ['bob@example.org'],
      client: { hostname: 'mx6.partner.example', family: 'inet6', address: '2001:db8::25', port: 1 } },
    input: { intakeAddress: 'finance@intake.example', recipients: ['bob@example.org'], policies: ['finance', 'partners'], copyId: '5Ab3Mn1.2' },
    subject: 'Grüße aus Köln – Rechnung №4711 ✓',
    report: ['Sender: juergen@partner.example', 'Subject: Grüße aus Köln – Rechnung №4711 ✓', 'Message-Id: <utf8-1@partner.example>', 'Recipient: bob@example.org'],
    encoding: '8bit',
  },
  toBob('encoded-subject', '6Cd4', { sender: 'juergen@partner.example' }, 'Grüße aus Köln – Rechnung',
    ['Sender: juergen@partner.example', 'Subject: Grüße aus Köln – Rechnung', 'Message-Id: <encoded-1@partner.example>']),
  toBob('no-message-id', '', { sender: '', client: { hostname: 'localhost', family: 'unix', address: '/run/s' }, macros: {} }, '',
    ['Sender: alice@partner.example', 'Subject:', 'Message-Id: Unknown Message-ID']),
  toBob('bounce', '7Ef5', { sender: '' }, 'Undelivered Mail Returned to Sender',
    ['Sender: MAILER-DAEMON@mx.partner.example', 'Subject: Undelivered Mail Returned to Sender', 'Message-Id: <20261123181959.7F3A2C0123@mx.partner.example>']),
  toBob('sender-differs', '8Gh6', { sender: 'bounces+123@mailer.partner.example' }, 'Signed on behalf',
    ['Sender: assistant@partner.example', 'On-Behalf-Of: boss@partner.example', 'Subject: Signed on behalf', 'Message-Id: <obo-1@partner.example>']),
  toBob('forged-remote-ip', '9Ij7', { sender: 'mallory@attacker.example', client: { hostname: 'unknown', family: 'inet', address: '198.51.100.66', port: 1 } },
    'Looks internal', ['Sender: mallory@attacker.example', 'Subject: Looks internal', 'Message-Id: <forged-1@attacker.example>']),
  toBob('long-lines', 'AKl8', { sender: 'alice@partner.example' }, 'A line of 1000 octets',
    ['Sender: alice@partner.example', 'Subject: A line of 1000 octets', 'Message-Id: <long-1@partner.example>'], 'binary'),
  {
    name: 'hostile',
    envelope: { queueId: 'HOSTILE1', sender: 'mallory@attacker.example\r\nBcc: x@evil.example', recipients: ['bob@example.org'],
      client: { hostname: 'unknown', family: 'inet', address: '::ffff:198.51.100.66', port: 1 } },
    input: {
      intakeAddress: 'global@intake.example', recipients: ['bob@example.org\r\nRecipient: planted@evil.example', 'carol@example.org\0'],
      policies: ['DEFAULT'], copyId: 'HOSTILE1.1',
    },
    subject: 'Pay nowBcc: victim@example.org\tstill subjectX-Injected: yes',
    report: ['Sender: mallory@attacker.example', 'Subject: Pay nowBcc: victim@example.org\tstill subjectX-Injected: yes',
      'Message-Id: <m1@attacker.example>To: other@example.org', 'Recipient: bob@example.orgRecipient: planted@evil.example', 'Recipient: carol@example.org'],
    encoding: '7bit',
  },
];

function build(c: Case): { msg: CapturedMessage; journal: Buffer } {
  const msg = capturedFromEml(fs.readFileSync(path.join(DIR, `${c.name}.eml`)), c.envelope);
  const journal = buildJournal({
    ...c.input, message: msg, hostname: 'gw1.example.org', date: new Date(Date.UTC(2026, 10, 23, 18, 20, 1)), remoteIpHeader: 'X-IronPort-RemoteIP',
  });
  return { msg, journal };
}

/** The attached original as the receiver must see it: Return-Path, our remote-IP header, the original (earlier ones renamed). */
function expectedOriginal(msg: CapturedMessage): Buffer {
  const top = `Return-Path: <${msg.sender.address.replace(/[\r\n]/g, '')}>\r\n${msg.clientIp !== undefined ? `X-IronPort-RemoteIP: ${msg.clientIp}\r\n` : ''}`;
  const renamed = originalMessage({ ...msg, headers: msg.headers.map((h) => (/^x-ironport-remoteip$/i.test(h.name) ? { ...h, name: `X-TDC-Original-${h.name}` } : h)) });
  return Buffer.concat([Buffer.from(top, 'latin1'), renamed]);
}

describe.each(CASES)('journal golden file: $name', (c) => {
  const { msg, journal } = build(c);
  const goldenPath = path.join(DIR, `${c.name}.journal.eml`);
  let parsed: ParsedMail;
  let strict: Unjournaled;

  beforeAll(async () => {
    if (UPDATE) fs.writeFileSync(goldenPath, journal);
    parsed = await simpleParser(journal);
  });

  it('equals the reviewed golden file byte for byte', () => {
    const golden = fs.readFileSync(goldenPath);
    expect(journal.toString('latin1')).toBe(golden.toString('latin1'));
  });

  it('passes the strict un-journaling rules: sender, Message-Id, recipients, CRLF, the original attached', () => {
    strict = unjournal(journal);
    const [sender, ...rest] = c.report;
    expect(`Sender: ${strict.sender}`).toBe(sender);
    expect(strict.messageId).not.toBe('');
    expect(strict.recipients.length).toBe(c.input.recipients.length);
    expect(strict.originalEncoding).toBe(c.encoding);
    expect(strict.reportEncoding).toBe(c.report.join('').match(/[^\x00-\x7f]/) ? 'quoted-printable' : '7bit');
    expect(strict.original.equals(expectedOriginal(msg))).toBe(true);
    expect(rest.length).toBeGreaterThan(0);
  });

  it('labels the copy as its bytes need (7bit, 8bit, binary) and lines within 998 octets unless binary', () => {
    expect(describeOriginal(msg).body).toBe(c.encoding);
    const text = journal.toString('latin1');
    const longest = Math.max(...text.split('\r\n').map((l) => l.length));
    if (c.encoding === 'binary') expect(longest).toBeGreaterThan(998);
    else expect(longest).toBeLessThanOrEqual(998);
  });

  it('reads back with mailparser as a journal report with the original attached', () => {
    // mailparser leaves empty fields out of `headers`; the raw lines keep them
    expect(parsed.headerLines.find((h) => h.key === 'x-ms-journal-report')?.line).toBe('X-MS-Journal-Report:');
    expect(parsed.headers.get('auto-submitted')).toBe('auto-generated');
    expect(parsed.headers.get('x-tdc-journal')).toMatch(/^gw1\.example\.org; queue-id=\S+; copy-id=\S+; policy=\S+$/);
    expect(parsed.messageId).toBe(`<tdc.${c.input.copyId}@gw1.example.org>`);
    expect(parsed.subject ?? '').toBe(c.subject);
    expect((parsed.to as { text: string }).text).toBe(c.input.intakeAddress);
    expect(parsed.text).toBe(`${c.report.join('\n')}\n`);
    expect(parsed.attachments).toHaveLength(1);
    expect(parsed.attachments[0]!.contentType).toBe('message/rfc822');
    expect(parsed.attachments[0]!.content.equals(expectedOriginal(msg))).toBe(true);
  });

  it('the wrapper header has only our fields (nothing from the message added any)', () => {
    const names = parsed.headerLines.map((h) => h.key).sort();
    const id = msg.headers.find((h) => h.name.toLowerCase() === 'message-id');
    expect(names).toEqual(
      ['auto-submitted', 'content-type', 'date', 'from', 'message-id', 'mime-version', 'subject', 'to', 'x-ms-journal-report', 'x-tdc-journal',
        // the hostile Message-ID is no msg-id once made one line, so it is not copied into a header
        ...(id && c.name !== 'hostile' ? ['x-ms-exchange-parent-message-id'] : []),
        ...(c.encoding === '7bit' ? [] : ['content-transfer-encoding'])].sort(),
    );
  });
});

describe('golden cases, by what they prove', () => {
  const journal = (name: string) => build(CASES.find((c) => c.name === name)!);

  it('the attached original carries exactly one remote-IP header, ours, on top; earlier ones are renamed', () => {
    const { original } = unjournal(journal('forged-remote-ip').journal);
    const lines = original.toString('latin1').split('\r\n\r\n')[0]!.split('\r\n');
    expect(lines.filter((l) => /^x-ironport-remoteip:/i.test(l))).toEqual(['X-IronPort-RemoteIP: 198.51.100.66']);
    expect(lines.slice(0, 2)).toEqual(['Return-Path: <mallory@attacker.example>', 'X-IronPort-RemoteIP: 198.51.100.66']);
    expect(lines).toContain('X-TDC-Original-X-IronPort-RemoteIP: 10.0.0.1');
    expect(lines).toContain('X-TDC-Original-x-ironport-remoteip: 192.168.1.1');
  });

  it('a null-sender bounce: the report names the From: address, Return-Path keeps the null envelope sender', () => {
    const u = unjournal(journal('bounce').journal);
    expect(u.sender).toBe('MAILER-DAEMON@mx.partner.example');
    expect(u.original.toString('latin1')).toMatch(/^Return-Path: <>\r\n/);
  });

  it('the X-MS-Exchange-Parent-Message-Id is the original Message-ID, and absent without one', () => {
    expect(unjournal(journal('ordinary').journal).wrapperHeader).toContain('\r\nX-MS-Exchange-Parent-Message-Id: <abc123@partner.example>\r\n');
    expect(unjournal(journal('no-message-id').journal).wrapperHeader).not.toContain('X-MS-Exchange-Parent-Message-Id');
  });

  it('a non-ASCII subject reaches the wrapper as RFC 2047 words, so no copy needs SMTPUTF8', () => {
    const { wrapperHeader } = unjournal(journal('utf8-headers').journal);
    expect(wrapperHeader).toMatch(/\r\nSubject: =\?UTF-8\?B\?[A-Za-z0-9+/=]+\?=/);
  });
});

describe('golden inputs', () => {
  it('the .eml inputs (except the hostile one with bare LF) rebuild to their own bytes', () => {
    for (const c of CASES.filter((x) => x.name !== 'hostile')) {
      const raw = fs.readFileSync(path.join(DIR, `${c.name}.eml`));
      expect(originalMessage(capturedFromEml(raw, c.envelope)).equals(raw)).toBe(true);
    }
  });
});
