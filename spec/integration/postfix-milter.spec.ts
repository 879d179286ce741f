/**
 * End to end: our milter server behind a real Postfix 3.7 on loopback. 100 messages over 10 SMTP
 * sessions (several per session, RSET mid-transaction, a second EHLO, multi-recipient, null sender,
 * a 5 MB body, raw UTF-8 / folded / empty headers); every capture must match what Postfix delivered.
 * Then the same over a unix socket.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { startMilterServer, MilterServer } from '../../lib/milter';
import { CapturedMessage } from '../../lib/message';
import { MemoryLogger } from '../../lib/util/logger';
import { startPostfix, PostfixInstance } from '../support/postfix';
import { makeCorpus, runSessions, splitSessions, SessionPlan } from '../support/mail-corpus';
import { checkCaptures } from '../support/capture-check';
import { makeHarnessDir } from '../support/mta-sandbox';

jest.setTimeout(90_000);

describe('milter behind real Postfix over TCP', () => {
  let milter: MilterServer;
  let pf: PostfixInstance;
  const captured: CapturedMessage[] = [];
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

  it('sees the daemon name of the ORIGINATING listener and the SASL login of the auth listener', async () => {
    const corpus = makeCorpus({ count: 3, tag: 'pf-direction' });
    const [plain] = await runSessions(pf.smtpPort, [{ messages: [corpus[0]!] }]);
    const [orig] = await runSessions(pf.ports.originating!, [{ messages: [corpus[1]!] }]);
    const [auth] = await runSessions(pf.ports.auth!, [{ messages: [corpus[2]!], auth: { user: 'alice', password: pf.saslUsers.alice! } }]);
    const byQid = (id: string): CapturedMessage => captured.find((c) => c.queueId === id)!;
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
  const captured: CapturedMessage[] = [];

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
