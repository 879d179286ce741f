/**
 * Checks the real-Postfix harness itself (no milter): start/stop, extra listeners, SASL auth,
 * Maildir delivery parsing and the DNS guard, so a broken harness fails here and not as a milter bug.
 */
import * as fs from 'node:fs';
import { AddressInfo } from 'node:net';
import { SMTPServer } from 'smtp-server';
import { startPostfix, PostfixInstance } from '../support/postfix';
import { SmtpClient } from '../support/smtp-client';
import { pidAlive, pollUntil } from '../support/mta-sandbox';

describe('postfix harness (no milter)', () => {
  let pf: PostfixInstance;
  beforeAll(async () => {
    pf = await startPostfix({
      listeners: {
        originating: { overrides: { milter_macro_daemon_name: 'ORIGINATING' } },
        auth: { saslAuth: true },
      },
    });
  });
  afterAll(async () => {
    await pf?.stop();
  });

  it('runs master under the DNS guard while the host keeps its own resolver config', () => {
    const nss = fs.readFileSync(`/proc/${pf.masterPid}/root/etc/nsswitch.conf`, 'utf8');
    expect(nss).toMatch(/^hosts:\s*files\s*$/m);
    expect(fs.readFileSync(`/proc/${pf.masterPid}/root/etc/resolv.conf`, 'utf8')).toMatch(/^nameserver 127\.0\.0\.1$/m);
    expect(fs.readFileSync('/etc/nsswitch.conf', 'utf8')).not.toBe(nss);
    expect(new Set(Object.values(pf.ports)).size).toBe(3);
    expect(pf.ports.smtp).toBe(pf.smtpPort);
  });

  it('delivers to the Maildir with envelope, recipient and queue id recoverable', async () => {
    const c = await SmtpClient.connect(pf.smtpPort);
    try {
      expect(c.greeting.code).toBe(220);
      await c.ehlo('client.test');
      const data =
        'From: a@client.test\r\nTo: alice@example.test\r\nSubject: one\r\nX-Folded: a\r\n\tb\r\n' +
        'Date: Mon, 01 Jan 2024 00:00:00 +0000\r\nMessage-ID: <one@client.test>\r\n\r\n.leading dot\r\nend\r\n';
      const r1 = await c.send({ from: 'sender@client.test', to: ['alice@example.test', 'bob@example.test'], data });
      await c.mail('other@client.test');
      await c.rcpt('carol@example.test');
      await c.rset();
      const r2 = await c.send({ from: '', to: ['dave@example.test'], data: 'Subject: two\r\n\r\nx\r\n' });
      await c.quit();
      const got = await pf.waitForDelivered(3, 10_000);
      expect(got).toHaveLength(3);
      const one = got.filter((d) => d.queueId === r1.queueId);
      expect(one.map((d) => d.recipient).sort()).toEqual(['alice@example.test', 'bob@example.test']);
      for (const d of one) {
        expect(d.sender).toBe('sender@client.test');
        expect(d.message.toString('latin1')).toBe(data);
      }
      const two = got.find((d) => d.queueId === r2.queueId);
      expect(two?.sender).toBe('');
      expect(two?.recipient).toBe('dave@example.test');
    } finally {
      c.close();
    }
  });

  it('authenticates on the SASL listener only', async () => {
    const c = await SmtpClient.connect(pf.ports.auth!);
    const plain = await SmtpClient.connect(pf.smtpPort);
    try {
      const ehlo = await c.ehlo('client.test');
      expect(ehlo.lines.some((l) => /^AUTH\b.*PLAIN/.test(l))).toBe(true);
      expect((await plain.ehlo('client.test')).lines.some((l) => /^AUTH\b/.test(l))).toBe(false);
      const bad = await c.command(`AUTH PLAIN ${Buffer.from('\0alice\0wrong').toString('base64')}`);
      expect(bad.code).toBe(535);
      await c.authPlain('alice', pf.saslUsers.alice!);
      const r = await c.send({ from: 'alice@client.test', to: ['erin@example.test'], data: 'Subject: auth\r\n\r\nx\r\n' });
      await c.quit();
      await pf.waitForDelivered(4, 10_000);
      expect(pf.maillog()).toMatch(new RegExp(`${r.queueId}: client=localhost\\[127\\.0\\.0\\.1\\], sasl_method=PLAIN, sasl_username=alice`));
    } finally {
      c.close();
      plain.close();
    }
  });

  it('relays other domains to a loopback port when relayPort is set', async () => {
    const got: { from: string; to: string[]; data: string }[] = [];
    const sink = new SMTPServer({
      authOptional: true,
      disabledCommands: ['STARTTLS', 'AUTH'],
      logger: false,
      onData(stream, session, done) {
        const parts: Buffer[] = [];
        stream.on('data', (b: Buffer) => parts.push(b));
        stream.on('end', () => {
          const from = session.envelope.mailFrom === false ? '' : session.envelope.mailFrom.address;
          got.push({ from, to: session.envelope.rcptTo.map((r) => r.address), data: Buffer.concat(parts).toString('latin1') });
          done();
        });
      },
    });
    await new Promise<void>((resolve) => sink.listen(0, '127.0.0.1', resolve));
    const relay = await startPostfix({ relayPort: (sink.server.address() as AddressInfo).port, virtualDomains: [] });
    try {
      const c = await SmtpClient.connect(relay.smtpPort);
      await c.ehlo('client.test');
      await c.send({ from: 'sender@client.test', to: ['intake@intake.test'], data: 'Subject: relayed\r\n\r\nx\r\n' });
      await c.quit();
      await pollUntil(() => (got.length > 0 ? true : undefined), 15_000, () => `nothing relayed\n${relay.maillog()}`);
      expect(got).toHaveLength(1);
      expect(got[0]).toMatchObject({ from: 'sender@client.test', to: ['intake@intake.test'] });
      expect(got[0]!.data).toMatch(/Subject: relayed\r\n/);
    } finally {
      await relay.stop();
      await new Promise<void>((resolve) => sink.close(() => resolve()));
    }
  });

  it('reconfigures a running instance (postfix reload)', async () => {
    await pf.reconfigure(['smtpd_banner = $myhostname ESMTP reconfigured']);
    // Idle smtpd processes may answer once more with the old settings before they exit.
    let greeting = '';
    for (let i = 0; i < 40 && !greeting.includes('reconfigured'); i++) {
      if (i > 0) await new Promise((r) => setTimeout(r, 100));
      const c = await SmtpClient.connect(pf.smtpPort);
      greeting = c.greeting.text;
      await c.quit();
    }
    expect(greeting).toBe('220 mx.harness.test ESMTP reconfigured');
  });

  it('stops master and every child, and removes its directory', async () => {
    const other = await startPostfix();
    await other.stop();
    expect(pidAlive(other.masterPid)).toBe(false);
    expect(fs.existsSync(other.dir)).toBe(false);
  });
});
