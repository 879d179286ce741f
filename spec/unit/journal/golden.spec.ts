/**
 * Journal golden files: .eml in (as Postfix hands it to a milter with HDR_LEADSPC) → the expected
 * journal .eml out, byte for byte. `UPDATE_GOLDEN=1 npx jest spec/unit/journal` rewrites the expected
 * files; review them by eye before committing. mailparser then reads each result back.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { simpleParser, type ParsedMail } from 'mailparser';
import { buildJournal, type JournalInput } from '../../../lib/journal';
import { originalMessage, type CapturedMessage } from '../../../lib/message';
import { capturedFromEml, type EnvelopeParts } from '../../support/captured-message';

const DIR = path.resolve(__dirname, '../../fixtures/journal');
const UPDATE = process.env['UPDATE_GOLDEN'] === '1';

interface Case {
  name: string;
  envelope: EnvelopeParts;
  input: Omit<JournalInput, 'message' | 'hostname' | 'date' | 'remoteIpHeader'>;
  /** What the parsed wrapper must show. */
  subject: string;
  report: string;
}

const CASES: Case[] = [
  {
    name: 'ordinary',
    envelope: { queueId: '4Xk2Lq0yZmz9vT', sender: 'alice@partner.example', recipients: ['bob@example.org', 'carol@example.org', 'dave@example.org'] },
    input: { intakeAddress: '33c48e-27xp9-05ecb4@beta.cmd.cisco.com', recipients: ['bob@example.org', 'carol@example.org'], policies: ['DEFAULT'], copyId: '4Xk2Lq0yZmz9vT.1' },
    subject: 'Invoice 4711 for November',
    report: 'Sender: alice@partner.example\nSubject: Invoice 4711 for November\nMessage-Id: <abc123@partner.example>\nRecipient: bob@example.org\nRecipient: carol@example.org',
  },
  {
    name: 'utf8-headers',
    envelope: { queueId: '5Ab3Mn1', sender: 'juergen@partner.example', recipients: ['bob@example.org'],
      client: { hostname: 'mx6.partner.example', family: 'inet6', address: '2001:db8::25', port: 1 } },
    input: { intakeAddress: 'finance@intake.example', recipients: ['bob@example.org'], policies: ['finance', 'partners'], copyId: '5Ab3Mn1.2' },
    subject: 'Grüße aus Köln – Rechnung №4711 ✓',
    report: 'Sender: juergen@partner.example\nSubject: Grüße aus Köln – Rechnung №4711 ✓\nMessage-Id: <utf8-1@partner.example>\nRecipient: bob@example.org',
  },
  {
    name: 'no-message-id',
    envelope: { queueId: '', sender: '', recipients: ['bob@example.org'], client: { hostname: 'localhost', family: 'unix', address: '/run/s' }, macros: {} },
    input: { intakeAddress: 'global@intake.example', recipients: ['bob@example.org'], policies: ['DEFAULT'], copyId: 'NOQUEUE-1.1' },
    subject: '',
    report: 'Sender: <>\nSubject:\nRecipient: bob@example.org',
  },
  {
    name: 'hostile',
    envelope: { queueId: 'HOSTILE1', sender: 'mallory@attacker.example\r\nBcc: x@evil.example', recipients: ['bob@example.org'],
      client: { hostname: 'unknown', family: 'inet', address: '::ffff:198.51.100.66', port: 1 } },
    input: {
      intakeAddress: 'global@intake.example', recipients: ['bob@example.org\r\nRecipient: planted@evil.example', 'carol@example.org\0'],
      policies: ['DEFAULT'], copyId: 'HOSTILE1.1',
    },
    subject: 'Pay nowBcc: victim@example.org\tstill subjectX-Injected: yes',
    report: 'Sender: mallory@attacker.exampleBcc: x@evil.example\nSubject: Pay nowBcc: victim@example.org\tstill subjectX-Injected: yes\n' +
      'Message-Id: <m1@attacker.example>To: other@example.org\nRecipient: bob@example.orgRecipient: planted@evil.example\nRecipient: carol@example.org',
  },
];

function build(c: Case): { msg: CapturedMessage; journal: Buffer } {
  const msg = capturedFromEml(fs.readFileSync(path.join(DIR, `${c.name}.eml`)), c.envelope);
  const journal = buildJournal({
    ...c.input, message: msg, hostname: 'gw1.example.org', date: new Date(Date.UTC(2026, 10, 23, 18, 20, 1)), remoteIpHeader: 'X-IronPort-RemoteIP',
  });
  return { msg, journal };
}

describe.each(CASES)('journal golden file: $name', (c) => {
  const { msg, journal } = build(c);
  const goldenPath = path.join(DIR, `${c.name}.journal.eml`);
  let parsed: ParsedMail;

  beforeAll(async () => {
    if (UPDATE) fs.writeFileSync(goldenPath, journal);
    parsed = await simpleParser(journal);
  });

  it('equals the reviewed golden file byte for byte', () => {
    const golden = fs.readFileSync(goldenPath);
    expect(journal.toString('latin1')).toBe(golden.toString('latin1'));
  });

  it('uses CRLF line ends only and no line over 998 octets', () => {
    const text = journal.toString('latin1');
    expect(text.replace(/\r\n/g, '')).not.toMatch(/\n/);
    for (const line of text.split('\r\n')) expect(line.length).toBeLessThanOrEqual(998);
  });

  it('reads back as a journal report with the original attached unchanged', () => {
    // mailparser leaves empty fields out of `headers`; the raw lines keep them
    expect(parsed.headerLines.find((h) => h.key === 'x-ms-journal-report')?.line).toBe('X-MS-Journal-Report:');
    expect(parsed.headers.get('x-tdc-journal')).toMatch(/^gw1\.example\.org; queue-id=\S+; copy-id=\S+; policy=\S+$/);
    expect(parsed.messageId).toBe(`<tdc.${c.input.copyId}@gw1.example.org>`);
    expect(parsed.subject ?? '').toBe(c.subject);
    expect((parsed.to as { text: string }).text).toBe(c.input.intakeAddress);
    expect(parsed.text?.replace(/\r\n/g, '\n').trimEnd()).toBe(c.report);
    // exactly one added header: the sender-IP header, first
    const ipLine = msg.client && msg.client.family !== 'unix' ? `X-IronPort-RemoteIP: ${msg.client.address!.replace(/^::ffff:/, '')}\r\n` : '';
    const embedded = Buffer.concat([Buffer.from(ipLine, 'latin1'), originalMessage(msg)]);
    expect(parsed.attachments).toHaveLength(1);
    expect(parsed.attachments[0]!.contentType).toBe('message/rfc822');
    expect(parsed.attachments[0]!.content.equals(embedded)).toBe(true);
  });

  it('the wrapper header has only our fields (nothing from the message added any)', () => {
    const names = parsed.headerLines.map((h) => h.key).sort();
    expect(names).toEqual(
      ['content-type', 'date', 'from', 'message-id', 'mime-version', 'subject', 'to', 'x-ms-journal-report', 'x-tdc-journal',
        ...(journal.includes('Content-Transfer-Encoding: 8bit\r\n\r\n--') ? ['content-transfer-encoding'] : [])].sort(),
    );
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
