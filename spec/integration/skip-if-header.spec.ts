/**
 * Journal only what will be delivered, through real Postfix: per policy, mail marked by a scanner
 * (`X-Spam-Flag: YES`, `X-Virus-Status: Infected`) is not journaled where a skip_if_header rule
 * matches, with a `not journaled` line and the skipped_header count; unmarked mail is journaled;
 * every original is delivered. With a scanner milter before tdc-milter in smtpd_milters, the mark it
 * adds is what tdc-milter sees (why tdc-milter sits last).
 */
import * as path from 'node:path';
import { TdcApp } from '../../lib/app';
import { parseConfigText, type Config } from '../../lib/config';
import { MemoryLogger } from '../../lib/util/logger';
import { startPostfix, type PostfixInstance } from '../support/postfix';
import { ScriptedIntake } from '../support/scripted-intake';
import { SmtpClient } from '../support/smtp-client';
import { until } from '../support/forwarder-harness';
import { unjournal } from '../support/unjournal';
import { startMarkingMilter } from '../support/marking-milter';

const CA_FILE = path.join(__dirname, '..', 'fixtures', 'tls', 'ca.crt');

function config(relayPort: number): Config {
  const r = parseConfigText(`
[milter]
listen = inet:127.0.0.1:0
status_listen = no
hostname = gw.example.test

[tdc]
intake_address = global@intake.test
relay = [127.0.0.1]:${relayPort}
tls_ca_file = ${CA_FILE}

[policy finance]
recipients = @finance.example.test
tdc = custom
intake_address = finance@intake.test
skip_if_header = X-Spam-Flag: ^YES
skip_if_header = X-Virus-Status: ^Infected

[policy DEFAULT]
tdc = global
skip_if_header = X-Virus-Status: ^Infected
`, 'skip.conf');
  if (!r.ok) throw new Error(r.errors.join('\n'));
  return r.config;
}

function message(subject: string, to: string[], marks: string[]): Buffer {
  return Buffer.from(
    `From: Alice <alice@partner.test>\r\nTo: ${to.join(', ')}\r\nSubject: ${subject}\r\n${marks.map((m) => `${m}\r\n`).join('')}` +
      `Message-ID: <${subject.replace(/\W/g, '')}@partner.test>\r\nDate: Mon, 23 Nov 2026 18:20:01 +0000\r\n\r\nhello\r\n`,
    'latin1',
  );
}

describe('skip_if_header through real Postfix', () => {
  let intake: ScriptedIntake;
  let app: TdcApp;
  let postfix: PostfixInstance;
  const logger = new MemoryLogger();

  beforeAll(async () => {
    intake = await ScriptedIntake.start();
    app = await TdcApp.start(config(intake.port), { logger });
    postfix = await startPostfix({ milters: app.milter.listenAddress, virtualDomains: ['example.test', 'finance.example.test'] });
  });

  afterAll(async () => {
    await postfix?.stop();
    await app?.stop(2000);
    await intake?.close();
  });

  it('marked mail is skipped per policy, unmarked mail is journaled, every original is delivered', async () => {
    const to = ['ann@example.test', 'bob@finance.example.test'];
    const client = await SmtpClient.connect(postfix.smtpPort);
    await client.ehlo('mx.partner.test');
    const spam = await client.send({ from: 'alice@partner.test', to, data: message('spam', to, ['X-Spam-Flag: YES', 'X-Spam-Score: 9.1']) });
    const virus = await client.send({ from: 'alice@partner.test', to, data: message('virus', to, ['X-Virus-Status: Infected (Eicar-Signature)']) });
    const clean = await client.send({ from: 'alice@partner.test', to, data: message('clean', to, ['X-Spam-Flag: NO', 'X-Virus-Status: Clean']) });
    await client.quit();

    await postfix.waitForDelivered(6);
    // spam: only DEFAULT's copy (finance skips it); virus: none; clean: both.
    await until(() => intake.received.length >= 3, 15_000, 'three journal copies at the intake');
    await until(() => app.forwarder.counters().activeRecipients === 0, 5000, 'the queue to empty');
    const got = intake.received.map((m) => {
      const u = unjournal(m.raw);
      return `${m.rcptTo.join(',')} ${u.messageId} ${u.recipients.join(',')}`;
    }).sort();
    expect(got).toEqual([
      'finance@intake.test <clean@partner.test> bob@finance.example.test',
      'global@intake.test <clean@partner.test> ann@example.test',
      'global@intake.test <spam@partner.test> ann@example.test',
    ]);
    expect(logger.matching(/skip_if_header/).sort()).toEqual([
      `${spam.queueId}: not journaled for 1 recipient(s) of policy finance: skip_if_header X-Spam-Flag: ^YES matched`,
      `${virus.queueId}: not journaled for 1 recipient(s) of policy DEFAULT: skip_if_header X-Virus-Status: ^Infected matched`,
      `${virus.queueId}: not journaled for 1 recipient(s) of policy finance: skip_if_header X-Virus-Status: ^Infected matched`,
    ].sort());
    expect(logger.matching(new RegExp(`^${clean.queueId}: not journaled`))).toEqual([]);
    const metrics = await app.metrics.registry.metrics();
    expect(metrics).toContain('tdc_journal_decisions_total{policy="finance",outcome="skipped_header"} 2');
    expect(metrics).toContain('tdc_journal_decisions_total{policy="DEFAULT",outcome="skipped_header"} 1');
  });

  it('a mark added by a scanner milter earlier in smtpd_milters is seen: tdc-milter last in the chain skips it', async () => {
    const scanner = await startMarkingMilter({ name: 'X-Spam-Flag', value: 'YES', when: (n, v) => /^subject$/i.test(n) && /pills/i.test(v) });
    try {
      await postfix.reconfigure([`smtpd_milters = ${scanner.address}, ${app.milter.listenAddress}`]);
      const receivedBefore = intake.received.length;
      const deliveredBefore = postfix.delivered().length;
      const to = ['bob@finance.example.test'];
      const client = await SmtpClient.connect(postfix.smtpPort);
      await client.ehlo('mx.partner.test');
      const spam = await client.send({ from: 'alice@partner.test', to, data: message('cheap pills', to, []) });
      const ham = await client.send({ from: 'alice@partner.test', to, data: message('minutes', to, []) });
      await client.quit();

      const delivered = (await postfix.waitForDelivered(deliveredBefore + 2)).slice(deliveredBefore);
      // The scanner did mark the spam as delivered, and only the spam.
      const marked = delivered.filter((d) => /^X-Spam-Flag: YES$/m.test(d.raw.toString('latin1')));
      expect(marked.map((d) => d.queueId)).toEqual([spam.queueId]);
      expect(scanner.marked).toBe(1);
      await until(() => intake.received.length > receivedBefore, 15_000, 'the copy of the unmarked message');
      await until(() => logger.matching(new RegExp(`^${spam.queueId}: not journaled`)).length > 0, 5000, 'the skip line');
      expect(logger.matching(new RegExp(`^${spam.queueId}: not journaled`))).toEqual([
        `${spam.queueId}: not journaled for 1 recipient(s) of policy finance: skip_if_header X-Spam-Flag: ^YES matched`,
      ]);
      expect(intake.received.slice(receivedBefore).map((m) => unjournal(m.raw).messageId)).toEqual(['<minutes@partner.test>']);
      expect(ham.queueId).toBeDefined();
    } finally {
      await postfix.reconfigure([`smtpd_milters = ${app.milter.listenAddress}`]);
      await scanner.close();
    }
  });
});
