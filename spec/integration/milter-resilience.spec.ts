/**
 * The milter going away must never stop mail: with `milter_default_action = accept` real Postfix
 * keeps delivering while our milter server is stopped (mid-session and for new sessions), and once it
 * is restarted on the same port new sessions are captured again.
 */
import { startMilterServer, MilterServer } from '../../lib/milter';
import { CapturedMessage } from '../../lib/message';
import { MemoryLogger } from '../../lib/util/logger';
import { startPostfix, PostfixInstance } from '../support/postfix';
import { SmtpClient } from '../support/smtp-client';
import { makeCorpus, PlannedMessage, runSessions } from '../support/mail-corpus';

jest.setTimeout(60_000);

describe('milter stopped and restarted behind real Postfix', () => {
  let first: MilterServer | undefined;
  let second: MilterServer | undefined;
  let pf: PostfixInstance;
  const capturedFirst: CapturedMessage[] = [];
  const capturedSecond: CapturedMessage[] = [];

  afterAll(async () => {
    await pf?.stop();
    await first?.close(100);
    await second?.close(100);
  });

  it('keeps mail flowing while the milter is down and resumes capturing after a restart', async () => {
    first = await startMilterServer({ listen: 'inet:127.0.0.1:0', logger: new MemoryLogger(), onMessage: (m) => capturedFirst.push(m) });
    const port = first.port!;
    pf = await startPostfix({ milters: `inet:127.0.0.1:${port}`, milterDefaultAction: 'accept' });
    const corpus = makeCorpus({ count: 12, tag: 'resilience' });
    const batch = (from: number, to: number): PlannedMessage[] => corpus.slice(from, to);
    const send = async (c: SmtpClient, msgs: PlannedMessage[]): Promise<string[]> => {
      const ids: string[] = [];
      for (const m of msgs) {
        const r = await c.send({ from: m.from, to: m.to, data: m.data, mailParams: m.mailParams, rcptParams: m.rcptParams });
        ids.push(r.queueId!);
      }
      return ids;
    };

    // 1. An SMTP session starts while the milter is up.
    const c = await SmtpClient.connect(pf.smtpPort);
    let idsUp: string[];
    let idsMidSession: string[];
    try {
      await c.ehlo('client.test');
      idsUp = await send(c, batch(0, 3));
      expect(capturedFirst.map((m) => m.queueId)).toEqual(idsUp);

      // 2. The milter stops mid-session (its open milter connection is cut); the session goes on.
      await first.close(50);
      idsMidSession = await send(c, batch(3, 6));
      await c.quit();
    } finally {
      c.close();
    }

    // 3. New sessions while nothing listens on the milter port.
    const down = await runSessions(pf.smtpPort, [{ messages: batch(6, 9) }], 1);

    // 4. Restart on the same port; new sessions are captured again.
    second = await startMilterServer({ listen: `inet:127.0.0.1:${port}`, logger: new MemoryLogger(), onMessage: (m) => capturedSecond.push(m) });
    expect(second.port).toBe(port);
    const up = await runSessions(pf.smtpPort, [{ messages: batch(9, 12) }], 1);

    const recipients = corpus.reduce((a, m) => a + m.to.length, 0);
    const delivered = await pf.waitForDelivered(recipients, 20_000);
    const deliveredIds = new Set(delivered.map((d) => d.queueId));
    for (const id of [...idsUp, ...idsMidSession, ...down.map((m) => m.queueId), ...up.map((m) => m.queueId)]) {
      expect(deliveredIds.has(id)).toBe(true);
    }
    expect(capturedFirst).toHaveLength(3);
    expect(capturedSecond.map((m) => m.queueId)).toEqual(up.map((m) => m.queueId));
    // Postfix noticed and applied the default action instead of refusing mail.
    const log = pf.maillog();
    expect(log).toContain(`warning: milter inet:127.0.0.1:${port}: `); // the cut mid-session connection
    expect(log).toContain(`connect to Milter service inet:127.0.0.1:${port}: Connection refused`);
  });
});
