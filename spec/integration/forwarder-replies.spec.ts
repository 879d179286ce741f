/**
 * The forwarder against a real STARTTLS intake on loopback (relay [127.0.0.1]:port): for each
 * scripted reply or fault, the number of attempts the intake saw, the final state, counters and
 * log lines. Nothing is ever sent before TLS: where TLS fails the intake sees no transaction.
 */
import { Forwarder, type ForwarderEvent, type ForwarderOptions } from '../../lib/forwarder';
import { MailLog } from '../../lib/status';
import { MemoryLogger } from '../../lib/util/logger';
import { ScriptedIntake, SilentServer, closedPort, type IntakeOptions } from '../support/scripted-intake';
import { copyEvents, finalType, loopbackOptions, settled, testCopy, until } from '../support/forwarder-harness';
import { relay } from '../support/config-values';

interface Run {
  fwd: Forwarder;
  logger: MemoryLogger;
  events: ForwarderEvent[];
}

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

async function intake(opts: IntakeOptions): Promise<ScriptedIntake> {
  const i = await ScriptedIntake.start(opts);
  cleanups.push(() => i.close());
  return i;
}

function forwarder(port: number, overrides: Partial<ForwarderOptions> = {}): Run {
  const logger = new MemoryLogger();
  const events: ForwarderEvent[] = [];
  const mailLog = new MailLog(logger);
  const fwd = new Forwarder(loopbackOptions({ relay: relay(`[127.0.0.1]:${port}`), ...overrides }), {
    logger, onEvent: (e) => { events.push(e); mailLog.observe(e); },
  });
  cleanups.push(() => fwd.close());
  return { fwd, logger, events };
}

const finalKind = finalType;
const SETD = 'Cisco Secure Email Threat Defense';

describe('forwarder against a scripted intake', () => {
  it('sends a copy given as pieces without joining them: the same bytes arrive, dots stuffed across the seams', async () => {
    const i = await intake({});
    const { fwd } = forwarder(i.port);
    const whole = Buffer.from('From: j@gw.example.test\r\nSubject: pieces\r\n\r\n.leading dot\r\n.\r\nmid\r\n..two\r\nend\r\n', 'latin1');
    // Cut right inside CRLF and before the dots, so the stuffing must look across pieces.
    const cuts = [whole.indexOf('\n.leading'), whole.indexOf('.\r\nmid'), whole.indexOf('\nmid') , whole.indexOf('..two') + 1];
    const pieces: Buffer[] = [];
    let prev = 0;
    for (const c of cuts) { pieces.push(whole.subarray(prev, c)); prev = c; }
    pieces.push(whole.subarray(prev));
    const c = { ...testCopy('journal@intake.test'), raw: pieces };
    expect(fwd.offer(c)).toBe(true);
    await settled(fwd);
    expect(i.received).toHaveLength(1);
    expect(i.received[0]!.raw.toString('latin1')).toBe(whole.toString('latin1'));
    expect(fwd.counters()).toMatchObject({ delivered: 1, queuedBytes: 0 });
  });

  it('delivers over TLS with the null sender, logs the whole life of the copy', async () => {
    const i = await intake({});
    const { fwd, logger, events } = forwarder(i.port);
    const c = testCopy('journal@intake.test', 5000);
    expect(fwd.offer(c)).toBe(true);
    await settled(fwd);
    expect(i.received).toHaveLength(1);
    const m = i.received[0]!;
    expect(m.mailFrom).toBe('');
    expect(m.rcptTo).toEqual(['journal@intake.test']);
    expect(m.raw.equals(c.raw)).toBe(true);
    expect(m.secure).toBe(true);
    expect(['TLSv1.2', 'TLSv1.3']).toContain(m.tlsProtocol);
    expect(fwd.counters()).toMatchObject({ enqueued: 1, delivered: 1, softBounced: 0, hardBounced: 0, dropped: 0, activeRecipients: 0, queuedBytes: 0 });
    // The gateway's rule: min_connections (3) open while the queue had the copy, closed about 1 s after it drained.
    expect(fwd.countersByDomain().get('intake.test')).toMatchObject({ enqueued: 1, delivered: 1, connectionsOut: 3 });
    expect(copyEvents(events).map((e) => e.type)).toEqual(['enqueued', 'attempt', 'delivery_start', 'delivered']);
    const mid = copyEvents(events)[0]!.copy.mid;
    const lines = logger.texts();
    const dcid = /New SMTP DCID (\d+) interface 127\.0\.0\.1 address 127\.0\.0\.1 port (\d+)$/.exec(lines.find((l) => l.startsWith('TDC: New SMTP DCID'))!)!;
    expect(Number(dcid[2])).toBe(i.port);
    const d = dcid[1];
    const expected = [
      `TDC: MID ${mid} with Message-ID '${c.messageId}' enqueued for forwarding to ${SETD} to the message intake address journal@intake.test`,
      `TDC: MID ${mid} copy ${c.id} of queue id ${c.queueId} ready ${c.raw.length} bytes`,
      `TDC: New SMTP DCID ${d} interface 127.0.0.1 address 127.0.0.1 port ${i.port}`,
      expect.stringMatching(new RegExp(`^DCID ${d} TLS success protocol TLSv1\\.[23] cipher \\S+$`)),
      `TDC: Delivery start DCID ${d} MID ${mid}`,
      `TDC: Message done DCID ${d} MID ${mid} to RID [0] [('250 2.0.0 Ok: queued as TEST')]`,
      `TDC: MID ${mid} successfully delivered for scanning with ${SETD}.`,
      `Message finished MID ${mid} done`,
    ];
    // The other connections opened for min_connections have lines of their own DCIDs, interleaved.
    const ownLines = lines.filter((l) => !/DCID \d+ /.test(l) || l.includes(`DCID ${d} `));
    expect(ownLines.slice(0, 8)).toEqual(expected);
    expect(copyEvents(events)[3]).toMatchObject({ type: 'delivered', result: { outcome: 'delivered', dcid: Number(d) } });
    // the idle connection is closed soon after the queue drained
    await i.waitIdle(3000);
    await until(() => fwd.counters().connectionsOut === 0, 2000, 'connectionsOut 0');
    expect(logger.matching(new RegExp(`^DCID ${d} close$`))).toHaveLength(1);
  });

  const r = (stage: 'mail' | 'rcpt' | 'data', code: number, message: string) => ({ stage, code, message });
  const table: [string, IntakeOptions, number, string, Record<string, number>, RegExp][] = [
    ['451 then 250: one retry, delivered', { replies: [r('mail', 451, '4.3.0 try later')] }, 2, 'delivered',
      { delivered: 1, softBounced: 1 }, /^Delayed: DCID \d+ MID \d+ to RID 0 - 4\.3\.0 - Temporary failure at intake \('451', \['4\.3\.0 try later'\]\); retry in 0\.15 s \(attempt 1 of 2\)$/],
    // Removed after an attempt: the gateway counts it hard bounced, not dropped.
    ['451 twice: retries spent', { replies: [r('mail', 451, 'later'), r('mail', 451, 'later')] }, 2, 'dropped',
      { hardBounced: 1, dropped: 0, softBounced: 1 }, /^Hard bounced - 5\.0\.0 - Temporary failure at intake \('451', \['later'\]\)$/],
    ['503 twice: retried once', { replies: [r('rcpt', 503, 'bad sequence'), r('rcpt', 503, 'bad sequence')] }, 2, 'dropped',
      { hardBounced: 1, dropped: 0, softBounced: 1 }, /^Hard bounced - 5\.0\.0 - Rejected by intake \('503', \['bad sequence'\]\)$/],
    ['552 then 250: retried once, delivered', { replies: [r('data', 552, '5.3.4 too big')] }, 2, 'delivered',
      { delivered: 1, softBounced: 1 }, /^Delayed: .*\('552', \['5\.3\.4 too big'\]\)/],
    ['550: hard bounce, no retry', { replies: [r('rcpt', 550, '5.1.1 no such journal')] }, 1, 'hard_bounce',
      { hardBounced: 1, softBounced: 0 }, /^Hard bounced - 5\.1\.1 - Rejected by intake \('550', \['5\.1\.1 no such journal'\]\)$/],
    ['554 at end of data: hard bounce', { replies: [r('data', 554, '5.7.1 spam')] }, 1, 'hard_bounce',
      { hardBounced: 1 }, /^Hard bounced - 5\.7\.1 - Rejected by intake \('554', \['5\.7\.1 spam'\]\)$/],
    ['STARTTLS hidden but working: delivered over TLS', { hideStartTls: true }, 1, 'delivered', { delivered: 1 }, /successfully delivered for scanning/],
  ];

  it.each(table)('%s', async (_name, opts, transactions, kind, counters, line) => {
    const i = await intake(opts);
    const { fwd, logger, events } = forwarder(i.port);
    fwd.offer(testCopy());
    await settled(fwd);
    await new Promise((res) => setTimeout(res, 200)); // a stray retry would show up here
    expect(i.transactions).toBe(transactions);
    expect(finalKind(events)).toBe(kind);
    expect(fwd.counters()).toMatchObject({ activeRecipients: 0, ...counters });
    expect(logger.lines.map((l) => l.message).some((m) => line.test(m))).toBe(true);
    for (const m of i.received) expect(m.secure).toBe(true);
  });

  it('421 instead of the greeting: one retry, then removed (hard bounced)', async () => {
    const i = await intake({ refuseConnections: 100 });
    const { fwd, logger, events } = forwarder(i.port);
    fwd.offer(testCopy());
    await settled(fwd);
    expect(i.connectionsTotal).toBe(2);
    expect(i.transactions).toBe(0);
    expect(finalKind(events)).toBe('dropped');
    expect(logger.matching(/^Hard bounced - 5\.0\.0 - Temporary failure at intake \('421', \['Service not available, try later'\]\)$/)).toHaveLength(1);
  });

  const tlsCases: [string, IntakeOptions, RegExp][] = [
    ['STARTTLS not offered', { noStartTls: true }, /STARTTLS/],
    ['TLS 1.1 only', { minVersion: 'TLSv1', maxVersion: 'TLSv1.1' }, /protocol|version/i],
    ['untrusted certificate', { cert: 'untrusted' }, /self-signed certificate/],
    ['certificate for another name', { cert: 'wrong-name' }, /altnames/],
  ];

  it.each(tlsCases)('%s: hard bounce, no retry, nothing sent in plaintext', async (_name, opts, reason) => {
    const i = await intake(opts);
    const { fwd, logger, events } = forwarder(i.port);
    const c = testCopy();
    fwd.offer(c);
    await settled(fwd);
    await new Promise((res) => setTimeout(res, 300));
    expect(i.connectionsTotal).toBe(1);
    expect(i.transactions).toBe(0);
    expect(i.received).toHaveLength(0);
    expect(finalKind(events)).toBe('hard_bounce');
    expect(fwd.counters()).toMatchObject({ hardBounced: 1, softBounced: 0 });
    const tlsLine = logger.matching(/^Connection Error: DCID \d+ domain: the\.tdc\.queue IP: 127\.0\.0\.1 port: \d+ details: tls interface: \S+ reason: /);
    expect(tlsLine).toHaveLength(1);
    expect(tlsLine[0]).toMatch(reason);
    const mid = copyEvents(events)[0]!.copy.mid;
    expect(copyEvents(events)[0]!.copy.copyId).toBe(c.id);
    expect(logger.matching(new RegExp(`^MID ${mid} delivery failed to ${SETD}:TLS Error\\.$`))).toHaveLength(1);
    expect(logger.matching(/^Hard bounced - 5\.7\.10 - TLS Error \('\d{3}', \['.+'\]\)$/)).toHaveLength(1);
  });

  it('connection refused: one retry, then removed (hard bounced); each try logs a connection error', async () => {
    const port = await closedPort();
    const { fwd, logger, events } = forwarder(port);
    fwd.offer(testCopy());
    await settled(fwd);
    expect(finalKind(events)).toBe('dropped');
    const errors = logger.matching(/^Connection Error: DCID \d+ domain: the\.tdc\.queue IP: 127\.0\.0\.1 port: \d+ details: refused interface: \S+ reason: .*ECONNREFUSED/);
    expect(errors).toHaveLength(2);
    expect(fwd.counters()).toMatchObject({ softBounced: 1, hardBounced: 1, dropped: 0, connectionsOut: 0 });
  });

  it('a server that accepts and never answers: greeting timeout, one retry, then removed (hard bounced)', async () => {
    const s = await SilentServer.start();
    cleanups.push(() => s.close());
    const { fwd, logger, events } = forwarder(s.port, { commandTimeout: 300 });
    fwd.offer(testCopy());
    await settled(fwd);
    expect(finalKind(events)).toBe('dropped');
    expect(events.filter((e) => e.type === 'attempt')).toHaveLength(2);
    expect(logger.matching(/^Hard bounced - 5\.4\.1 - connection timed out \('000', \['(Greeting never received|Timeout)'\]\)$/)).toHaveLength(1);
  });

  it('an attempt still in flight at maxQueueAge is aborted and the copy removed as too old', async () => {
    const s = await SilentServer.start();
    cleanups.push(() => s.close());
    const { fwd, logger, events } = forwarder(s.port, { commandTimeout: 5000, maxQueueAge: 600 });
    const started = Date.now();
    fwd.offer(testCopy());
    await until(() => s.connections === 1, 2000, 'the connection');
    await settled(fwd, 3000);
    expect(Date.now() - started).toBeLessThan(2500);
    expect(finalKind(events)).toBe('dropped');
    expect(logger.matching(/^MID \d+ removed from the\.tdc\.queue: too old \(0\.6\d* s in queue, max_queue_age 0\.6 s\)$/)).toHaveLength(1);
    expect(fwd.counters()).toMatchObject({ hardBounced: 1, dropped: 0 });
    await until(() => s.connections === 0, 2000, 'the aborted connection to close');
  });

  it('reuses a connection for several copies, never more than messagesPerConnection each', async () => {
    const i = await intake({});
    const { fwd } = forwarder(i.port, { minConnections: 1, maxConnections: 1, messagesPerConnection: 3 });
    for (let n = 0; n < 7; n += 1) fwd.offer(testCopy());
    await settled(fwd);
    expect(i.received).toHaveLength(7);
    expect(i.connectionsTotal).toBe(3); // 3 + 3 + 1
    expect(i.connectionsPeak).toBe(1);
  });

  it('reconfigure: new copies go the new way, the old transport is closed', async () => {
    const a = await intake({});
    const b = await intake({});
    const { fwd } = forwarder(a.port);
    fwd.offer(testCopy());
    await settled(fwd);
    expect(a.connectionsOpen).toBe(3); // min_connections while the copy was queued

    fwd.reconfigure(loopbackOptions({ relay: relay(`[127.0.0.1]:${b.port}`) }));
    await until(() => a.connectionsOpen === 0, 500, 'the old connection to close');
    fwd.offer(testCopy());
    await settled(fwd);
    expect(a.received).toHaveLength(1);
    expect(b.received).toHaveLength(1);
  });
});
