/**
 * End to end: our milter server behind a real Postfix 3.7 on loopback. 100 messages over 10 SMTP
 * sessions (several per session, RSET mid-transaction, a second EHLO, multi-recipient, null sender,
 * a 5 MB body, raw UTF-8 / folded / empty headers); every capture must match what Postfix delivered.
 * Then the same over a unix socket.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { startMilterServer, MilterServer } from '../../lib/milter';
import type { MilterMessage } from '../../lib/milter';
import { MemoryLogger } from '../../lib/util/logger';
import { startPostfix, PostfixInstance } from '../support/postfix';
import { makeCorpus, PlannedMessage, runSessions, splitSessions, SessionPlan } from '../support/mail-corpus';
import { checkCaptures } from '../support/capture-check';
import { makeHarnessDir, pollUntil } from '../support/mta-sandbox';

jest.setTimeout(90_000);

describe('milter behind real Postfix over TCP', () => {
  let milter: MilterServer;
  let pf: PostfixInstance;
  const captured: MilterMessage[] = [];
  const logger = new MemoryLogger();

  beforeAll(async () => {
    milter = await startMilterServer({ listen: 'inet:127.0.0.1:0', logger, onMessage: (m) => captured.push(m) });
    // tempfail: a milter protocol failure shows up as an SMTP error here, not as a silent bypass.
    pf = await startPostfix({
      milters: `inet:127.0.0.1:${milter.port}`,
      milterDefaultAction: 'tempfail',
      listeners: { originating: { overrides: { milter_macro_daemon_name: 'ORIGINATING' } }, auth: { saslAuth: true } },
    });
  });
  afterAll(async () => {
    await pf?.stop();
    await milter?.close(1000);
  });

  it('captures 100 messages exactly as Postfix delivered them', async () => {
    const corpus = makeCorpus({ count: 100, tag: 'pf-tcp', bigIndex: 42, bigBodyBytes: 5 * 1024 * 1024, bare: (n) => n % 25 === 13 });
    const sessions = splitSessions(corpus, [1, 5, 8, 10, 12, 15, 9, 11, 14, 15]);
    const plans: SessionPlan[] = sessions.map((messages, s) => ({
      messages,
      rsetBefore: s === 3 ? 4 : s === 7 ? 0 : undefined,
      ehloBefore: s === 5 ? 7 : undefined,
    }));
    const sent = await runSessions(pf.smtpPort, plans, 2);
    expect(sent).toHaveLength(100);
    const recipients = sent.reduce((a, m) => a + m.to.length, 0);
    const delivered = await pf.waitForDelivered(recipients, 60_000);

    const problems = checkCaptures(sent, captured, delivered, { deliveredEqualsSent: (m) => m.n % 25 !== 13 });
    expect(problems).toEqual([]);
    expect(delivered).toHaveLength(recipients);

    // The corpus really covered what it claims to.
    const big = captured.find((c) => c.queueId === sent[42]!.queueId)!;
    expect(big.bodyBytes).toBeGreaterThanOrEqual(5 * 1024 * 1024);
    expect(captured.some((c) => c.headers.some((h) => h.name === 'X-Folded' && h.value.includes('\n\t')))).toBe(true);
    expect(captured.some((c) => c.headers.some((h) => h.name === 'X-Empty' && h.value.trim() === ''))).toBe(true);
    expect(captured.some((c) => c.headers.some((h) => /[\x80-\xff]/.test(h.value)))).toBe(true);
    expect(captured.some((c) => c.sender.address === '')).toBe(true);
    // Postfix adds Date/Message-Id for local clients and shows them to milters.
    const bare = captured.find((c) => c.queueId === sent[13]!.queueId)!;
    expect(bare.headers.map((h) => h.name.toLowerCase())).toEqual(expect.arrayContaining(['message-id', 'date']));
    expect(milter.stats().protocolErrors).toBe(0);
    expect(logger.lines.filter((l) => l.level === 'error' || l.level === 'warning')).toEqual([]);
  });

  it('captures edge cases exactly as delivered: bare LF/CR, no blank line, no final CRLF, UTF-8 and quoted senders', async () => {
    const before = captured.length;
    const base = 'From: a@client.test\r\nDate: Mon, 01 Jan 2024 00:00:00 +0000\r\n';
    const mk = (n: number, from: string, data: string, params: string[] = []): PlannedMessage => ({
      n, from, to: [`edge${n}@example.test`], mailParams: params, rcptParams: [[]], data: Buffer.from(data, 'latin1'),
    });
    const msgs = [
      mk(0, 'a@client.test', `${base}Message-ID: <e0@client.test>\r\nSubject: bare LF\r\n\r\nline1\nline2\r\nline3\r\n`),
      mk(1, 'a@client.test', `${base}Message-ID: <e1@client.test>\r\nX-Long: ${'y'.repeat(5000)}\r\n\r\nbody\r\n`),
      mk(2, 'a@client.test', `${base}Message-ID: <e2@client.test>\r\n${Array.from({ length: 400 }, (_, i) => `X-H${i}: v${i}`).join('\r\n')}\r\n\r\nbody\r\n`),
      mk(3, Buffer.from('ü@client.test', 'utf8').toString('latin1'), `${base}Message-ID: <e3@client.test>\r\nSubject: UTF-8 envelope\r\n\r\nbody\r\n`, ['SMTPUTF8']),
      mk(4, '"john doe"@client.test', `${base}Message-ID: <e4@client.test>\r\nSubject: quoted local part\r\n\r\nbody\r\n`),
      mk(5, 'a@client.test', `${base}Message-ID: <e5@client.test>\r\nSubject: no blank line\r\nthis line starts the body\r\n`),
      mk(6, 'a@client.test', `${base}Message-ID: <e6@client.test>\r\nX-Tab:\tafter a tab\r\nX-Trail: trailing   \r\nX-Only-Spaces:    \r\n\r\nbody\r\n`),
      mk(7, 'a@client.test', `${base}Message-ID: <e7@client.test>\r\nSubject: no final CRLF\r\n\r\nbody`),
      mk(8, 'a@client.test', `${base}Message-ID: <e8@client.test>\r\nSubject: lone CR\r\n\r\nlone\rCR\r\n`),
    ];
    const sent = await runSessions(pf.smtpPort, [{ messages: msgs, rsetBefore: 3 }], 1);
    const ids = new Set(sent.map((m) => m.queueId));
    const delivered = await pollUntil(
      () => {
        const mine = pf.delivered().filter((d) => ids.has(d.queueId));
        return mine.length >= msgs.length ? mine : undefined;
      },
      20_000,
      () => `edge-case deliveries missing\n${pf.maillog().slice(-3000)}`,
    );
    // Postfix rewrites 0, 5, 7 and 8 on the way in (CRLF, blank line, final CRLF, CR → space): the
    // milter must still see exactly what was delivered.
    expect(checkCaptures(sent, captured.slice(before), delivered, { deliveredEqualsSent: (m) => ![0, 5, 7, 8].includes(m.n) })).toEqual([]);
  });

  it('sees the daemon name of the ORIGINATING listener and the SASL login of the auth listener', async () => {
    const corpus = makeCorpus({ count: 3, tag: 'pf-direction' });
    const [plain] = await runSessions(pf.smtpPort, [{ messages: [corpus[0]!] }]);
    const [orig] = await runSessions(pf.ports.originating!, [{ messages: [corpus[1]!] }]);
    const [auth] = await runSessions(pf.ports.auth!, [{ messages: [corpus[2]!], auth: { user: 'alice', password: pf.saslUsers.alice! } }]);
    const byQid = (id: string): MilterMessage => captured.find((c) => c.queueId === id)!;
    expect(byQid(plain!.queueId).macros.get('daemon_name')).toBe('mx.harness.test');
    expect(byQid(plain!.queueId).macros.get('auth_authen')).toBeUndefined();
    expect(byQid(orig!.queueId).macros.get('daemon_name')).toBe('ORIGINATING');
    // smtpd_sasl_local_domain = $myhostname, so the login carries the realm.
    expect(byQid(auth!.queueId).macros.get('auth_authen')).toBe('alice@mx.harness.test');
    expect(byQid(auth!.queueId).macros.get('auth_type')).toBe('PLAIN');
  });
});

describe('milter behind real Postfix over a unix socket', () => {
  let milter: MilterServer;
  let pf: PostfixInstance;
  let dir: string;
  const captured: MilterMessage[] = [];

  beforeAll(async () => {
    dir = makeHarnessDir('tdc-pfsock-');
    const sock = path.join(dir, 'milter.sock');
    milter = await startMilterServer({ listen: `unix:${sock}`, socketMode: 0o666, logger: new MemoryLogger(), onMessage: (m) => captured.push(m) });
    pf = await startPostfix({ milters: `unix:${sock}`, milterDefaultAction: 'tempfail' });
  });
  afterAll(async () => {
    await pf?.stop();
    await milter?.close(1000);
    if (dir !== undefined) fs.rmSync(dir, { recursive: true, force: true });
  });

  it('captures messages exactly as delivered', async () => {
    const corpus = makeCorpus({ count: 12, tag: 'pf-unix' });
    const sent = await runSessions(pf.smtpPort, splitSessions(corpus, [5, 7]).map((messages) => ({ messages, rsetBefore: 2 })), 2);
    const delivered = await pf.waitForDelivered(sent.reduce((a, m) => a + m.to.length, 0), 20_000);
    expect(checkCaptures(sent, captured, delivered, { deliveredEqualsSent: () => true })).toEqual([]);
    expect(captured.every((c) => c.client?.family === 'inet' && c.client.address === '127.0.0.1')).toBe(true);
  });
});
