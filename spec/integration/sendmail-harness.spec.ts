/**
 * Checks the real-Sendmail harness itself (no milter): fetch/start/stop, the DNS guard and dotted
 * host name, syslog capture, per-recipient delivery files with envelope and queue id recoverable.
 */
import * as fs from 'node:fs';
import { startSendmail, SendmailInstance } from '../support/sendmail';
import { SmtpClient } from '../support/smtp-client';
import { pidAlive } from '../support/mta-sandbox';

describe('sendmail harness (no milter)', () => {
  let sm: SendmailInstance;
  beforeAll(async () => {
    sm = await startSendmail({ listeners: { originating: { daemonName: 'ORIGINATING' } } });
  }, 120_000);
  afterAll(async () => {
    await sm?.stop();
  });

  it('starts 8.17 under the DNS guard with a dotted host name and logs through syslog', () => {
    expect(sm.version).toMatch(/^8\.17\./);
    expect(fs.readFileSync(`/proc/${sm.daemonPid}/root/etc/nsswitch.conf`, 'utf8')).toMatch(/^hosts:\s*files\s*$/m);
    expect(sm.maillog()).toMatch(/starting daemon \(8\.17/);
    expect(sm.ports.originating).not.toBe(sm.smtpPort);
  });

  it('delivers one file per recipient; refuses foreign domains at RCPT', async () => {
    const c = await SmtpClient.connect(sm.smtpPort);
    try {
      expect(c.greeting.text).toMatch(/^220 mx\.harness\.test ESMTP Sendmail 8\.17/);
      await c.ehlo('client.test');
      const data =
        'From: a@client.test\r\nTo: alice@example.test, bob@example.test\r\nSubject: one\r\nX-Folded: a\r\n\tb\r\n' +
        'X-Empty:\r\nX-Utf8: caf\xc3\xa9\r\n\r\n.leading dot\r\nend\r\n';
      await c.mail('sender@client.test');
      await c.rcpt('alice@example.test');
      expect((await c.command('RCPT TO:<zed@other.test>')).code).toBe(550);
      await c.rcpt('bob@example.test');
      const r1 = await c.data(data);
      const r2 = await c.send({ from: '', to: ['carol@example.test'], data: 'Subject: two\r\n\r\nx\r\n' });
      await c.quit();
      const got = await sm.waitForDelivered(3, 10_000);
      const one = got.filter((d) => d.queueId === r1.lines[0]!.split(' ')[1]);
      expect(one.map((d) => d.recipient).sort()).toEqual(['alice@example.test', 'bob@example.test']);
      for (const d of one) {
        expect(d.sender).toBe('sender@client.test');
        expect(d.message.toString('latin1')).toBe(data);
      }
      const two = got.find((d) => d.queueId === r2.queueId);
      expect(two?.sender).toBe('');
      expect(two?.message.toString('latin1')).toBe('Subject: two\r\n\r\nx\r\n');
    } finally {
      c.close();
    }
  });

  it('stops the daemon and removes its directory', async () => {
    const other = await startSendmail();
    await other.stop();
    expect(pidAlive(other.daemonPid)).toBe(false);
    expect(fs.existsSync(other.dir)).toBe(false);
  });
});
