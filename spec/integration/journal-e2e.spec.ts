/**
 * End to end, all real parts on loopback: a client → real Postfix → our milter (in-process TdcApp) →
 * policy split → journal → forwarder → a real STARTTLS intake (smtp-server, test CA). Checks the
 * decisions per policy, the journal bytes the intake received, that outgoing mail is not journaled,
 * and that with the intake down or dead the originals still flow at full speed while every copy is
 * dropped with a log line.
 */
import * as path from 'node:path';
import { simpleParser } from 'mailparser';
import { TdcApp } from '../../lib/app';
import { parseConfigText, type Config } from '../../lib/config';
import { MemoryLogger } from '../../lib/util/logger';
import { startPostfix, type PostfixInstance } from '../support/postfix';
import { ScriptedIntake, SilentServer, closedPort } from '../support/scripted-intake';
import { SmtpClient } from '../support/smtp-client';
import { until } from '../support/forwarder-harness';
import { finalLinesOf, outcomeOf } from '../support/gateway-log';

const CA_FILE = path.join(__dirname, '..', 'fixtures', 'tls', 'ca.crt');

function config(relayPort: number, timeouts = { connect: '1s', command: '2s', age: '10s' }): Config {
  const text = `
[milter]
listen = inet:127.0.0.1:0
status_listen = no
hostname = gw.example.test

[tdc]
enabled = yes
intake_address = global@intake.test
relay = [127.0.0.1]:${relayPort}
tls_ca_file = ${CA_FILE}
max_queue_age = ${timeouts.age}
retry_delay = 1s
connect_timeout = ${timeouts.connect}
command_timeout = ${timeouts.command}

[policy finance]
recipients = @finance.example.test
tdc = custom
intake_address = finance@intake.test

[policy lab]
recipients = @lab.example.test
tdc = no

[policy DEFAULT]
tdc = global
`;
  const r = parseConfigText(text, 'e2e.conf');
  if (!r.ok) throw new Error(r.errors.join('\n'));
  return r.config;
}

function message(subject: string, to: string[], body = 'hello\r\n'): Buffer {
  return Buffer.from(
    `From: Alice <alice@partner.test>\r\nTo: ${to.join(', ')}\r\nSubject: ${subject}\r\n` +
      `Message-ID: <${subject.replace(/\W/g, '')}@partner.test>\r\nDate: Mon, 23 Nov 2026 18:20:01 +0000\r\n\r\n${body}`,
    'latin1',
  );
}

const DOMAINS = ['example.test', 'finance.example.test', 'lab.example.test'];

describe('journaling end to end through real Postfix', () => {
  let intake: ScriptedIntake;
  let app: TdcApp;
  let postfix: PostfixInstance;
  const logger = new MemoryLogger();
  const built = new Map<string, Buffer>();

  beforeAll(async () => {
    intake = await ScriptedIntake.start();
    app = await TdcApp.start(config(intake.port), {
      logger,
      onJournalBuilt: (c) => built.set(c.id, c.raw),
    });
    postfix = await startPostfix({
      milters: app.milter.listenAddress,
      virtualDomains: DOMAINS,
      listeners: {
        originating: { overrides: { milter_macro_daemon_name: 'ORIGINATING' } },
        submission: { saslAuth: true },
      },
    });
  });

  afterAll(async () => {
    await postfix?.stop();
    await app?.stop(2000);
    await intake?.close();
  });

  it('splits recipients by policy: one copy per intake address, none for tdc = no, originals delivered', async () => {
    const to = ['ann@example.test', 'bob@finance.example.test', 'cy@lab.example.test', 'dee@example.test'];
    const client = await SmtpClient.connect(postfix.smtpPort);
    await client.ehlo('mx.partner.test');
    const { queueId } = await client.send({ from: 'alice@partner.test', to, data: message('Invoice 4711', to) });
    await client.quit();
    expect(queueId).toBeDefined();

    const deliveries = await postfix.waitForDelivered(4);
    expect(deliveries.map((d) => d.recipient).sort()).toEqual([...to].sort());
    await until(() => intake.received.length >= 2, 15000, 'two journal copies at the intake');
    await until(() => app.forwarder.counters().activeRecipients === 0, 5000, 'the queue to empty');

    const byIntake = new Map(intake.received.map((r) => [r.rcptTo.join(','), r]));
    expect([...byIntake.keys()].sort()).toEqual(['finance@intake.test', 'global@intake.test']);
    const original = deliveries[0]!.message;
    for (const [rcpt, got] of byIntake) {
      expect(got.mailFrom).toBe(''); // null sender: a failed copy never bounces to anyone
      expect(got.secure).toBe(true);
      expect(['TLSv1.2', 'TLSv1.3']).toContain(got.tlsProtocol);
      // The bytes the intake got are the journal we built, unchanged.
      const id = [...built.entries()].find(([, raw]) => raw.equals(got.raw))?.[0];
      expect(id).toBeDefined();
      expect(id!.startsWith(`${queueId}.`)).toBe(true);

      const parsed = await simpleParser(got.raw);
      // mailparser drops empty-valued headers, so look at the wrapper's header block itself.
      const wrapperHeaders = got.raw.toString('latin1').split('\r\n\r\n')[0]!;
      expect(wrapperHeaders).toMatch(/^X-MS-Journal-Report:\s*$/m);
      const report = parsed.text ?? '';
      const wanted = rcpt === 'global@intake.test' ? ['ann@example.test', 'dee@example.test'] : ['bob@finance.example.test'];
      expect(report.match(/^Recipient: .*$/gm)).toEqual(wanted.map((w) => `Recipient: ${w}`));
      expect(report).toContain('Sender: alice@partner.test');
      expect(report).toContain('Subject: Invoice 4711');
      // The attachment is the original byte for byte, with the envelope sender and the sender-IP header on top.
      const part = got.raw.toString('latin1').split('Content-Type: message/rfc822')[1]!;
      const inner = part.slice(part.indexOf('\r\n\r\n') + 4);
      const expected = `Return-Path: <alice@partner.test>\r\nX-IronPort-RemoteIP: 127.0.0.1\r\n${original.toString('latin1')}`;
      expect(inner.startsWith(expected)).toBe(true);
    }
    expect(logger.matching(/not journaled for 1 recipient\(s\) of policy lab: /)).toHaveLength(1);
    const c = app.forwarder.counters();
    expect(c.delivered).toBe(2);
    expect(c.enqueued).toBe(2);
    expect(app.tracker.byQueueId(queueId!)).toHaveLength(2);
  });

  it('does not journal mail from the ORIGINATING listener or from an authenticated client', async () => {
    const before = intake.received.length;
    const enqueuedBefore = app.forwarder.counters().enqueued;
    const deliveredBefore = postfix.delivered().length;

    const orig = await SmtpClient.connect(postfix.ports['originating']!);
    await orig.ehlo('workstation.example.test');
    const a = await orig.send({ from: 'ann@example.test', to: ['dee@example.test'], data: message('from inside', ['dee@example.test']) });
    await orig.quit();

    const sub = await SmtpClient.connect(postfix.ports['submission']!);
    await sub.ehlo('laptop.example.test');
    await sub.authPlain('alice', postfix.saslUsers['alice']!);
    const b = await sub.send({ from: 'alice@example.test', to: ['ann@example.test'], data: message('authenticated', ['ann@example.test']) });
    await sub.quit();

    await postfix.waitForDelivered(deliveredBefore + 2);
    await until(() => logger.matching(new RegExp(`${b.queueId}: not journaled`)).length > 0, 5000, 'the decision line');
    expect(logger.matching(new RegExp(`${a.queueId}: not journaled: .*ORIGINATING`, 'i'))).toHaveLength(1);
    expect(logger.matching(new RegExp(`${b.queueId}: not journaled: .*auth`, 'i'))).toHaveLength(1);
    expect(app.forwarder.counters().enqueued).toBe(enqueuedBefore);
    expect(intake.received.length).toBe(before);
  });

  it('journaling off: Postfix is asked for no headers or body; after a reload only new SMTP sessions bring content', async () => {
    const on = config(intake.port);
    const off: Config = { ...on, tdc: { ...on.tdc, enabled: false } };
    app.reload(off);
    try {
      const deliveredBefore = postfix.delivered().length;
      const receivedBefore = intake.received.length;
      const negotiatedBefore = logger.matching(/we use version/).length;
      const early = await SmtpClient.connect(postfix.smtpPort);
      await early.ehlo('mx.partner.test');
      const a = await early.send({ from: 'alice@partner.test', to: ['bob@example.test'], data: message('while off', ['bob@example.test']) });
      await until(() => logger.matching(new RegExp(`${a.queueId}: not journaled: journaling is disabled`)).length > 0, 5000, 'the off decision');
      // Postfix granted NOBODY (0x10), NOHDRS (0x20) and NOEOH (0x40) on the connection it opened while off.
      const terms = logger.matching(/we use version/).slice(negotiatedBefore);
      expect(terms.length).toBeGreaterThan(0);
      for (const t of terms) expect(Number.parseInt(/we use .*protocol 0x([0-9a-f]+)/.exec(t)![1]!, 16) & 0x70).toBe(0x70);

      app.reload(on);
      // The session opened while off keeps its terms: its next message has no content to journal.
      const b = await early.send({ from: 'alice@partner.test', to: ['bob@example.test'], data: message('same session', ['bob@example.test']) });
      await early.quit();
      const late = await SmtpClient.connect(postfix.smtpPort);
      await late.ehlo('mx.partner.test');
      const c = await late.send({ from: 'alice@partner.test', to: ['bob@example.test'], data: message('new session', ['bob@example.test']) });
      await late.quit();

      await postfix.waitForDelivered(deliveredBefore + 3);
      await until(() => intake.received.length > receivedBefore, 10_000, 'the copy of the new session');
      expect(logger.lines.filter((l) => l.level === 'warning' && l.message.includes(`${b.queueId}: not journaled: its milter connection began while journaling was off`))).toHaveLength(1);
      expect(logger.matching(new RegExp(`${c.queueId}: journal copy ${c.queueId}\\.1 `))).toHaveLength(1);
      expect(intake.received.slice(receivedBefore).map((m) => m.raw.toString('latin1')).join('')).toContain('Subject: new session');
    } finally {
      app.reload(on);
    }
  });
});

describe('originals flow at full speed when the intake is down or dead', () => {
  for (const kind of ['refusing connections', 'accepting and never answering'] as const) {
    it(`intake ${kind}: every original delivered promptly, every copy ends undelivered with a log line`, async () => {
      const silent = kind === 'accepting and never answering' ? await SilentServer.start() : undefined;
      const port = silent ? silent.port : await closedPort();
      const logger = new MemoryLogger();
      // Long intake timeouts: a milter that waited on the copy would hold each message >= 10 s.
      const app = await TdcApp.start(config(port, { connect: '5s', command: '10s', age: '8s' }), { logger });
      const postfix = await startPostfix({ milters: app.milter.listenAddress, virtualDomains: DOMAINS });
      try {
        const n = 20;
        const client = await SmtpClient.connect(postfix.smtpPort);
        await client.ehlo('mx.partner.test');
        const latencies: number[] = [];
        const ids: string[] = [];
        for (let i = 0; i < n; i++) {
          const t0 = Date.now();
          const { queueId } = await client.send({ from: 'alice@partner.test', to: ['ann@example.test'], data: message(`m${i}`, ['ann@example.test']) });
          latencies.push(Date.now() - t0);
          ids.push(queueId!);
        }
        await client.quit();
        await postfix.waitForDelivered(n);
        // The milter answers at once: a copy's fate never holds up the original. The bound is loose
        // for loaded CI machines, and still far below the intake timeouts a blocking milter would show.
        expect(Math.max(...latencies)).toBeLessThan(3000);

        await until(() => app.forwarder.counters().activeRecipients === 0, 30000, 'every copy to leave the queue');
        const c = app.forwarder.counters();
        expect(c.enqueued).toBe(n);
        expect(c.delivered).toBe(0);
        expect(c.dropped + c.hardBounced).toBe(n);
        const lines = logger.texts();
        for (const id of ids) expect(finalLinesOf(lines, `${id}.1`).map(outcomeOf)).toEqual([expect.stringMatching(/^(hard|dropped)$/)]);
      } finally {
        await postfix.stop();
        await app.stop(1000);
        await silent?.close();
      }
    });
  }
});
