/**
 * Security defaults of the assembled daemon (TdcApp from config): listeners on loopback by default, a
 * non-loopback status_listen refused by the configuration, the unix socket's default mode and a group
 * applied, copies planned only to configured intake addresses for any envelope (fast-check), and no
 * message body or header values in any log line, debug included. Related tests live elsewhere: the
 * untrusted intake certificate (copy-faults, forwarder-replies), the status guard itself (status-server).
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import fc from 'fast-check';
import { TdcApp } from '../../lib/app';
import { DEFAULT_CONFIG_TEXT, parseConfigText, type Config } from '../../lib/config';
import { planJournal } from '../../lib/policy';
import { MemoryLogger } from '../../lib/util/logger';
import { makeMessage } from '../support/captured-message';
import { MilterClient } from '../support/milter-client';
import { closedPort } from '../support/scripted-intake';

jest.setTimeout(30_000);

function parse(text: string): Config {
  const r = parseConfigText(text, 'security.conf', { hostname: 'gw.example.test' });
  if (!r.ok) throw new Error(r.errors.join('\n'));
  return r.config;
}

function appConfig(milter: string, tdc = ''): Config {
  return parse(`[milter]\nhostname = gw.example.test\n${milter}\n\n[tdc]\n${tdc}\n`);
}

describe('security defaults', () => {
  it('the embedded default binds the milter and the status endpoint to loopback, socket mode 0660, journaling off', () => {
    const c = parse(DEFAULT_CONFIG_TEXT);
    expect(c.milter.listen).toEqual({ kind: 'inet', host: '127.0.0.1', port: 8894 });
    expect(c.milter.statusListen).toBe('127.0.0.1:8895');
    expect(c.milter.socketMode).toBe(0o660);
    expect(c.tdc.enabled).toBe(false);
  });

  it('a non-loopback status_listen is refused by the configuration (so by check-config and the daemon alike)', () => {
    const r = parseConfigText('[milter]\nlisten = inet:127.0.0.1:0\nstatus_listen = 0.0.0.0:0\n', 'security.conf', { hostname: 'gw.example.test' });
    expect(r.ok ? [] : r.errors).toEqual([
      'security.conf:3: status_listen: expected a loopback IP:PORT such as 127.0.0.1:8895 or [::1]:8895, or no, got "0.0.0.0:0" ' +
        '(0.0.0.0 is not a loopback address; the status endpoint has no authentication, so it listens on loopback only)',
    ]);
  });

  it('a unix socket gets the default mode 0660 and the configured group', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tdc-sec-'));
    const sock = path.join(dir, 'milter.sock');
    // A group other than our own when we may chown to it (root, as in CI), else our own gid.
    const mail = /^mail:[^:]*:(\d+):/m.exec(fs.readFileSync('/etc/group', 'utf8'));
    const useMail = process.getuid?.() === 0 && mail !== null;
    const gid = useMail ? Number(mail![1]) : os.userInfo().gid;
    const app = await TdcApp.start(appConfig(`listen = unix:${sock}\nsocket_group = ${useMail ? 'mail' : gid}\nstatus_listen = no`), { logger: new MemoryLogger() });
    try {
      const st = fs.statSync(sock);
      expect(st.isSocket()).toBe(true);
      expect(st.mode & 0o777).toBe(0o660);
      expect(st.gid).toBe(gid);
    } finally {
      await app.stop(100);
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('for any envelope and headers, copies go only to configured intake addresses and cover only envelope recipients', () => {
    const config = parse(`[milter]\nhostname = gw.example.test\n\n[tdc]\nenabled = yes\nintake_address = global@intake.test\n\n` +
      `[policy finance]\nrecipients = @finance.example.test\ntdc = custom\nintake_address = finance@intake.test\n\n` +
      `[policy lab]\nrecipients = @lab.example.test\ntdc = no\n\n[policy DEFAULT]\ntdc = global\n`);
    const configured = new Set(['global@intake.test', 'finance@intake.test']);
    const local = fc.constantFrom('ann', 'bob', 'global', 'finance', 'x\r\ny', 'evil@attacker.test', '"a b"');
    const domain = fc.constantFrom('example.test', 'finance.example.test', 'lab.example.test', 'intake.test', 'attacker.test', 'FINANCE.example.test');
    const address = fc.tuple(local, domain).map(([l, d]) => `${l}@${d}`);
    fc.assert(
      fc.property(fc.array(address, { maxLength: 8 }), address, fc.array(fc.tuple(fc.constantFrom('To', 'Cc', 'Bcc', 'X-TDC-Journal', 'Subject'), address)), (rcpts, sender, headers) => {
        const msg = makeMessage({ recipients: rcpts, sender, headers: headers.map(([name, v]) => ({ name, value: ` ${v}` })) });
        const plan = planJournal(msg, config);
        const envelope = new Set(rcpts.map((r) => r.toLowerCase()));
        for (const copy of plan.copies) {
          expect(configured.has(copy.intakeAddress)).toBe(true);
          for (const r of copy.recipients) expect(envelope.has(r.toLowerCase())).toBe(true);
          for (const r of copy.recipients) expect(configured.has(r.toLowerCase())).toBe(false); // loop safety
        }
      }),
      { numRuns: 200 },
    );
  });

  it('no message body or header value in any log line, debug level included', async () => {
    const logger = new MemoryLogger(); // keeps every level
    const relay = `[127.0.0.1]:${await closedPort()}`;
    const app = await TdcApp.start(
      appConfig('listen = inet:127.0.0.1:0\nstatus_listen = no\nlog_level = debug',
        `enabled = yes\nintake_address = journal@intake.test\nrelay = ${relay}\nmax_queue_age = 1s\nretry_delay = 0s\nconnect_timeout = 200ms`),
      { logger },
    );
    try {
      const c = await MilterClient.connect({ port: app.milter.port! });
      await c.negotiate();
      c.macro('C', { j: 'mx.test', '{daemon_name}': 'smtpd' });
      await c.connectInfo('client.test', '4', 2525, '192.0.2.9');
      await c.helo('client.test');
      c.macro('M', { i: 'SECRET1' });
      await c.mail('<alice@partner.test>');
      await c.rcpt('<ann@example.test>');
      await c.header('Subject', ' SUBJECT-MARKER-51c2');
      await c.header('Authorization', ' Bearer TOKEN-MARKER-9d0e');
      await c.eoh();
      await c.body('BODY-MARKER-77aa password=hunter2\r\n');
      expect((await c.eob()).map((r) => r.char)).toEqual(['c']);
      c.quit();
      await c.waitClosed();
      await new Promise<void>((resolve) => {
        const t = setInterval(() => {
          if (app.forwarder.counters().activeRecipients === 0) { clearInterval(t); resolve(); }
        }, 20);
      });
      expect(logger.matching(/journal copy SECRET1\.1/)).toHaveLength(1);
      expect(logger.lines.filter((l) => l.level === 'debug').length).toBeGreaterThan(0);
      for (const l of logger.lines) expect(l.message).not.toMatch(/BODY-MARKER|hunter2|TOKEN-MARKER|SUBJECT-MARKER/);
    } finally {
      await app.stop(100);
    }
  });
});
