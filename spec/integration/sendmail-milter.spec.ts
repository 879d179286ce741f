/**
 * End to end: our milter server behind a real Sendmail 8.17 on loopback. Sendmail differs from
 * Postfix in ways the session must absorb: no ABORT after an accepted message (the next MAIL follows
 * directly), `i` only at MAIL, its own connect macros, `{msg_id}` at end of message. 20 messages in
 * 4 sessions; every capture must match what Sendmail delivered.
 */
import { startMilterServer, MilterServer } from '../../lib/milter';
import type { MilterMessage } from '../../lib/milter';
import { MemoryLogger } from '../../lib/util/logger';
import { startSendmail, SendmailInstance } from '../support/sendmail';
import { makeCorpus, runSessions, splitSessions } from '../support/mail-corpus';
import { checkCaptures } from '../support/capture-check';

jest.setTimeout(90_000);

describe('milter behind real Sendmail 8.17', () => {
  let milter: MilterServer;
  let sm: SendmailInstance;
  const captured: MilterMessage[] = [];
  const logger = new MemoryLogger();

  beforeAll(async () => {
    milter = await startMilterServer({ listen: 'inet:127.0.0.1:0', logger, onMessage: (m) => captured.push(m) });
    // F=T: a milter failure shows up as an SMTP error, not as a silent bypass.
    sm = await startSendmail({ milter: milter.listenAddress, milterDefaultAction: 'tempfail' });
  }, 120_000);
  afterAll(async () => {
    await sm?.stop();
    await milter?.close(1000);
  });

  it('captures 20 messages exactly as Sendmail delivered them', async () => {
    const corpus = makeCorpus({ count: 20, tag: 'sm-tcp', bigIndex: 7, bigBodyBytes: 300_000 });
    const plans = splitSessions(corpus, [4, 6, 5, 5]).map((messages, s) => ({
      messages,
      rsetBefore: s === 1 ? 2 : undefined,
      ehloBefore: s === 2 ? 3 : undefined,
    }));
    const sent = await runSessions(sm.smtpPort, plans, 2);
    expect(sent).toHaveLength(20);
    const delivered = await sm.waitForDelivered(sent.reduce((a, m) => a + m.to.length, 0), 30_000);

    expect(checkCaptures(sent, captured, delivered, { deliveredEqualsSent: () => true })).toEqual([]);

    // Sendmail's own macro set reached the capture: connect-stage `j` and `{daemon_name}`, and the
    // MAIL-stage queue id kept until end of message.
    for (const c of captured) {
      expect(c.macros.get('j')).toBe('mx.harness.test');
      expect(c.macros.get('daemon_name')).toBe('MTA-harness');
      expect(c.queueId).toMatch(/^[0-9A-Za-z]{14}$/);
    }
    expect(captured.find((c) => c.queueId === sent[7]!.queueId)?.bodyBytes).toBeGreaterThanOrEqual(300_000);
    expect(milter.stats().protocolErrors).toBe(0);
    expect(logger.lines.filter((l) => l.level === 'error' || l.level === 'warning')).toEqual([]);
    expect(sm.maillog()).not.toMatch(/Milter.*(error|timeout|bogus)/i);
  });
});
