/**
 * Many concurrent SMTP sessions through real Postfix (default_process_limit raised) to the in-process
 * TdcApp: every session is open at once (EHLO done) before any sends, then all send; every original is
 * delivered, the milter saw that many sessions at once, and every copy reaches the intake exactly once.
 * 1,000 sessions by default (about 35 s on the 2-core machine); TDC_CONCURRENCY overrides the count.
 */
import * as path from 'node:path';
import { TdcApp } from '../../lib/app';
import { parseConfigText, type Config } from '../../lib/config';
import { MemoryLogger } from '../../lib/util/logger';
import { startPostfix, type PostfixInstance } from '../support/postfix';
import { ScriptedIntake } from '../support/scripted-intake';
import { SmtpClient } from '../support/smtp-client';
import { finalLinesOf, outcomeOf } from '../support/gateway-log';
import { until } from '../support/forwarder-harness';

const SESSIONS = Number(process.env['TDC_CONCURRENCY'] ?? 1000);
jest.setTimeout(Math.max(180_000, SESSIONS * 600));
const CA_FILE = path.join(__dirname, '..', 'fixtures', 'tls', 'ca.crt');

function config(relayPort: number): Config {
  const r = parseConfigText(
    `[milter]\nlisten = inet:127.0.0.1:0\nstatus_listen = no\nhostname = gw.example.test\n\n` +
      `[tdc]\nenabled = yes\nintake_address = journal@intake.test\nrelay = [127.0.0.1]:${relayPort}\ntls_ca_file = ${CA_FILE}\n` +
      `max_queue_age = 60s\nretry_delay = 1s\nqueue_max_messages = ${SESSIONS * 2}\n\n[policy DEFAULT]\ntdc = global\n`,
    'concurrency.conf',
  );
  if (!r.ok) throw new Error(r.errors.join('\n'));
  return r.config;
}

describe(`${SESSIONS} concurrent SMTP sessions through real Postfix`, () => {
  let intake: ScriptedIntake;
  let app: TdcApp;
  let postfix: PostfixInstance;
  const logger = new MemoryLogger();

  beforeAll(async () => {
    intake = await ScriptedIntake.start();
    app = await TdcApp.start(config(intake.port), { logger });
    postfix = await startPostfix({
      milters: app.milter.listenAddress,
      mainCf: [`default_process_limit = ${SESSIONS + 50}`, 'smtpd_client_connection_count_limit = 0', 'smtpd_client_connection_rate_limit = 0', 'smtpd_peername_lookup = no'],
    });
  });
  afterAll(async () => {
    await postfix?.stop();
    await app?.stop(2000);
    await intake?.close();
  });

  it('all open at once, all delivered, every copy journaled once', async () => {
    const t0 = Date.now();
    let peak = 0;
    const sampler = setInterval(() => { peak = Math.max(peak, app.milter.stats().activeSessions); }, 20);
    const clients: SmtpClient[] = [];
    try {
      // Open every session (the greeting and EHLO mean an smtpd owns it) before anyone sends.
      await Promise.all(Array.from({ length: SESSIONS }, async () => {
        const c = await SmtpClient.connect(postfix.smtpPort, { timeoutMs: Math.max(120_000, SESSIONS * 300) });
        clients.push(c);
        await c.ehlo('mx.partner.test');
      }));
      const opened = Date.now();
      const ids = await Promise.all(clients.map(async (c, i) => {
        const { queueId } = await c.send({
          from: 'alice@partner.test',
          to: ['ann@example.test'],
          data: Buffer.from(`From: alice@partner.test\r\nTo: ann@example.test\r\nSubject: concurrent ${i}\r\n\r\nhello ${i}\r\n`),
        });
        await c.quit();
        return queueId!;
      }));
      const sent = Date.now();
      await postfix.waitForDelivered(SESSIONS, Math.max(120_000, SESSIONS * 300));
      await until(() => intake.received.length >= SESSIONS, 60_000, 'every copy at the intake');
      await until(() => app.forwarder.counters().activeRecipients === 0, 10_000, 'the queue to empty');
      clearInterval(sampler);
      console.log(`${SESSIONS} sessions: open ${opened - t0} ms, sent ${sent - opened} ms, all copies in ${Date.now() - t0} ms; ` +
        `milter sessions at once: ${peak}`);

      expect(new Set(ids).size).toBe(SESSIONS);
      // Postfix opens a milter connection per SMTP session: most were open together.
      expect(peak).toBeGreaterThanOrEqual(Math.floor(SESSIONS * 0.9));
      const subjects = intake.received.map((r) => /Subject: (concurrent \d+)/.exec(r.raw.toString('latin1'))?.[1]);
      expect(new Set(subjects).size).toBe(SESSIONS);
      const c = app.forwarder.counters();
      expect(c).toMatchObject({ enqueued: SESSIONS, delivered: SESSIONS, hardBounced: 0, dropped: 0 });
      const lines = logger.texts();
      for (const id of ids) expect(finalLinesOf(lines, `${id}.1`).map(outcomeOf)).toEqual(['delivered']);
      expect(app.milter.stats().protocolErrors).toBe(0);
    } finally {
      clearInterval(sampler);
      for (const c of clients) c.close();
    }
  });
});
