/**
 * Hostile message content through the composition root (TdcApp.handleMessage) to a real STARTTLS
 * intake, logged by the real logger at the default level: CR/LF/NUL in header names and
 * values, a crafted Message-ID, queue id and envelope addresses, 8-bit bytes, a 1 MiB header, a body
 * planting our boundary. The journal parses back (mailparser) with exactly the expected Recipient lines
 * and the original as its attachment; every log line is one line; the copy's envelope is the intake only.
 */
import * as path from 'node:path';
import { PassThrough } from 'node:stream';
import { simpleParser } from 'mailparser';
import { TdcApp } from '../../lib/app';
import { parseConfigText, type Config } from '../../lib/config';
import { originalMessage, type CapturedMessage, type HeaderField } from '../../lib/message';
import { createLogger, type ClosableLogger } from '../../lib/util/logger';
import { singleLine } from '../../lib/journal';
import { unjournal } from '../support/unjournal';
import { makeMessage } from '../support/captured-message';
import { ScriptedIntake } from '../support/scripted-intake';
import { until } from '../support/forwarder-harness';

jest.setTimeout(30_000);

const CA_FILE = path.join(__dirname, '..', 'fixtures', 'tls', 'ca.crt');
const INTAKE = 'journal@intake.test';
const BODY_MARKER = 'BODY-MARKER-7f3a9c';

function config(relayPort: number): Config {
  const r = parseConfigText(
    `[milter]\nlisten = inet:127.0.0.1:0\nstatus_listen = no\nhostname = gw.example.test\n\n` +
      `[tdc]\nenabled = yes\nintake_address = ${INTAKE}\nrelay = [127.0.0.1]:${relayPort}\ntls_ca_file = ${CA_FILE}\n` +
      `max_queue_age = 10s\nretry_delay = 1s\n\n[policy DEFAULT]\ntdc = global\n`,
    'hostile.conf',
  );
  if (!r.ok) throw new Error(r.errors.join('\n'));
  return r.config;
}

interface Case {
  name: string;
  headers?: HeaderField[];
  sender?: string;
  recipients?: string[];
  queueId?: string;
  body?: Buffer;
}

const INJECT = '\r\nRecipient: evil@attacker.test\r\nBcc: evil@attacker.test\r\n\r\n';
const CASES: Case[] = [
  { name: 'CRLF in the Subject value', headers: [{ name: 'Subject', value: ` x${INJECT}` }] },
  { name: 'bare LF and NUL in values', headers: [{ name: 'Subject', value: ' a\nRecipient: evil@attacker.test\0\nTo: evil@attacker.test' }] },
  { name: 'CR/LF/NUL in a header name', headers: [{ name: 'X-Evil\r\nRecipient', value: ' evil@attacker.test' }, { name: 'Sub\0ject', value: ' n' }] },
  { name: 'crafted Message-ID', headers: [{ name: 'Message-ID', value: ` <x@y>${INJECT}--tdc-Q1.1--\r\n` }, { name: 'Subject', value: ' m' }] },
  { name: 'crafted envelope sender', sender: `evil@attacker.test>${INJECT}RCPT TO:<evil@attacker.test` },
  { name: 'crafted envelope recipient', recipients: [`bob@example.test${INJECT}RCPT TO:<evil@attacker.test>`] },
  { name: 'crafted queue id', queueId: `Q1\r\nTDC: Message done MID 1 to RID [0]\r\n` },
  { name: 'non-UTF-8 bytes', headers: [{ name: 'Subject', value: ' \xff\xfe\x80 caf\xe9' }], body: Buffer.from([0xff, 0xfe, 0x00, 0x0d, 0x0a, 0x80, 0x0d, 0x0a]) },
  { name: '1 MiB header without whitespace', headers: [{ name: 'Subject', value: ` ${'A'.repeat(1024 * 1024)}` }] },
  { name: '1 MiB folded header', headers: [{ name: 'X-Long', value: ` ${'word '.repeat(200_000)}\n\tend` }, { name: 'Subject', value: ' long' }] },
  {
    name: 'body planting our boundary and a fake report part',
    body: Buffer.from(`--tdc-Q99.1\r\nContent-Type: text/plain\r\n\r\nRecipient: evil@attacker.test\r\n--tdc-Q99.1--\r\n.\r\n..\r\n`, 'latin1'),
    queueId: 'Q99',
  },
];

describe('hostile content: journal stays well-formed, logs stay one line, the copy goes to the intake only', () => {
  let intake: ScriptedIntake;
  let app: TdcApp;
  let logger: ClosableLogger;
  const out: string[] = [];
  const built = new Map<string, Buffer>();

  beforeAll(async () => {
    intake = await ScriptedIntake.start();
    const stream = new PassThrough();
    stream.on('data', (d: Buffer) => out.push(d.toString('latin1')));
    logger = createLogger({ stream }); // the default level (info)
    app = await TdcApp.start(config(intake.port), { logger, onJournalBuilt: (c) => built.set(c.id, c.raw) });
  });
  afterAll(async () => {
    await app?.stop(2000);
    await intake?.close();
    await logger?.close();
  });

  it.each(CASES.map((c) => [c.name, c] as const))('%s', async (_name, c) => {
    const recipients = c.recipients ?? ['bob@example.test', 'carol@example.test'];
    const msg: CapturedMessage = makeMessage({
      queueId: c.queueId ?? `Q${CASES.indexOf(c)}`,
      sender: c.sender ?? 'alice@partner.test',
      recipients,
      headers: c.headers ?? [{ name: 'Subject', value: ' plain' }],
      body: [c.body ?? Buffer.from(`Hello ${BODY_MARKER}.\r\n`, 'latin1')],
    });
    const receivedBefore = intake.received.length;
    const builtBefore = built.size;
    app.handleMessage(msg);
    expect(built.size).toBe(builtBefore + 1);
    await until(() => intake.received.length === receivedBefore + 1, 10_000, 'the copy at the intake');
    const got = intake.received[receivedBefore]!;

    // Envelope: null sender, exactly the configured intake address.
    expect(got.mailFrom).toBe('');
    expect(got.rcptTo).toEqual([INTAKE]);
    const raw = [...built.values()].pop()!;
    expect(got.raw.equals(raw)).toBe(true);

    // Structure: every line within 998 octets; the wrapper's headers are ours only.
    const text = raw.toString('latin1');
    const head = text.slice(0, text.indexOf('\r\n\r\n'));
    expect(head.split('\r\n').map((l) => l.split(':')[0]).filter((n) => !/^[ \t]/.test(n))).toEqual([
      'From', 'To', 'Subject', 'Date', 'Message-ID', 'MIME-Version', 'X-MS-Journal-Report', 'Auto-Submitted',
      ...(head.includes('\r\nX-MS-Exchange-Parent-Message-Id:') ? ['X-MS-Exchange-Parent-Message-Id'] : []), 'X-TDC-Journal', 'Content-Type',
      ...(head.includes('Content-Transfer-Encoding') ? ['Content-Transfer-Encoding'] : []),
    ]);
    // (the attached original keeps its own lines, however long: it is copied byte for byte)
    const ours = text.slice(0, text.indexOf('Content-Type: message/rfc822'));
    for (const line of ours.split('\r\n')) expect(line.length).toBeLessThanOrEqual(998);
    const boundary = /boundary="([^"]+)"/.exec(head)![1]!;
    expect(originalMessage(msg).includes(boundary, 0, 'latin1')).toBe(false);

    // A journal consumer parses it back: one report, one attachment equal to the original.
    const parsed = await simpleParser(raw);
    expect(parsed.to && !Array.isArray(parsed.to) ? parsed.to.value.map((a) => a.address) : []).toEqual([INTAKE]);
    expect(parsed.bcc).toBeUndefined();
    expect(parsed.attachments).toHaveLength(1);
    const top = `Return-Path: <${singleLine(msg.sender.address)}>\r\nX-IronPort-RemoteIP: 203.0.113.25\r\n`;
    const inner = Buffer.concat([Buffer.from(top, 'latin1'), originalMessage(msg)]);
    // …and so does a strict un-journaling parser.
    expect(unjournal(raw).original.equals(inner)).toBe(true);
    expect(parsed.attachments[0]!.contentType).toBe('message/rfc822');
    expect(parsed.attachments[0]!.content.equals(inner)).toBe(true);
    const report = parsed.text ?? '';
    expect(report.match(/^Recipient: .*$/gm)).toHaveLength(recipients.length);
    expect(report.match(/^(Sender|On-Behalf-Of|Subject|Message-Id): /gm)!.length).toBeLessThanOrEqual(4);
    expect(report).not.toMatch(/^(Bcc|To|RCPT TO):/m);
  });

  it('every log line is one line with our prefix (or the gateway\'s own bare form); no body text and no injected line at the default level', async () => {
    await until(() => app.forwarder.counters().activeRecipients === 0, 10_000, 'the queue to empty');
    expect(app.forwarder.counters().delivered).toBe(CASES.length);
    const lines = out.join('').split('\n').filter((l) => l !== '');
    expect(lines.length).toBeGreaterThan(CASES.length * 2);
    // Our prefix, or one of the gateway's own lines that carry none (receiver-facts §3).
    for (const l of lines) expect(l).toMatch(/^\S+ (Info|Warning|Error|Debug): (TDC: |DCID \d+ |Message finished MID \d+ |Bounced: DCID |DNS Error )[^\r\0]*$/);
    expect(lines.join('\n')).not.toContain(BODY_MARKER);
    expect(lines.filter((l) => / Info: TDC: Message done MID 1 to RID/.test(l))).toEqual([]);
    // The crafted queue id shows escaped inside its own lines.
    expect(lines.some((l) => l.includes('Q1\\r\\nTDC: Message done MID 1'))).toBe(true);
  });
});
