/**
 * The CLI text, byte for byte: the status table (the.tdc.queue first, then each intake domain) and the
 * tracking history; plus the JSON builders they read from.
 */
import {
  buildStatusJson,
  buildTrackJson,
  CopyTracker,
  formatStatusTable,
  formatTrack,
  formatUptime,
  type QueueCounters,
  type StatusJson,
} from '../../../lib/status';
import { copyFacts, lifeOf } from '../../support/copy-events';

const T0 = Date.UTC(2026, 10, 23, 18, 20, 1);

function counters(over: Partial<QueueCounters> = {}): QueueCounters {
  return { activeRecipients: 0, connectionsOut: 0, delivered: 0, softBounced: 0, hardBounced: 0, dropped: 0, queuedBytes: 0, enqueued: 0, ...over };
}

function sampleStatus(): StatusJson {
  return buildStatusJson({
    version: '0.1.0',
    pid: 4242,
    startedAt: T0 - (2 * 86400 + 3 * 3600 + 4 * 60 + 5) * 1000,
    now: T0,
    milterListen: 'inet:127.0.0.1:8894',
    statusListen: '127.0.0.1:8895',
    journaling: true,
    intakeAddress: 'journal@intake.example.com',
    queue: {
      total: counters({ activeRecipients: 3, connectionsOut: 2, delivered: 12045, softBounced: 17, hardBounced: 1, dropped: 2, queuedBytes: 1234567, enqueued: 12068 }),
      byDomain: new Map([
        ['intake.example.com', counters({ activeRecipients: 3, connectionsOut: 2, delivered: 12000, softBounced: 17, queuedBytes: 1234567, enqueued: 12020 })],
        ['eu.intake.example.net', counters({ delivered: 45, hardBounced: 1, dropped: 2, enqueued: 48 })],
      ]),
    },
    milter: { connectionsTotal: 15000, activeSessions: 1, messagesTotal: 14020, protocolErrors: 0 },
    tracking: { size: 10000, capacity: 10000 },
  });
}

describe('buildStatusJson', () => {
  it('makes the /status document with sorted domain rows', () => {
    const s = sampleStatus();
    expect(s).toMatchObject({
      version: '0.1.0',
      pid: 4242,
      startedAt: '2026-11-21T15:15:56.000Z',
      now: '2026-11-23T18:20:01.000Z',
      uptimeSeconds: 183_845,
      journaling: true,
      queue: { destination: 'the.tdc.queue', delivered: 12045 },
      tracking: { copies: 10000, capacity: 10000 },
    });
    expect(s.domains.map((d) => d.destination)).toEqual(['eu.intake.example.net', 'intake.example.com']);
    expect(JSON.parse(JSON.stringify(s))).toEqual(s); // plain JSON, nothing lost on the wire
  });
});

describe('formatStatusTable', () => {
  it('prints a tophosts-like table', () => {
    expect(formatStatusTable(sampleStatus())).toBe(
      [
        'tdc-milter 0.1.0 (pid 4242), up 2d 03:04:05, as of 2026-11-23T18:20:01.000Z',
        'milter inet:127.0.0.1:8894: 1 session active, 15000 connections, 14020 messages, 0 protocol errors',
        'journaling on, global intake journal@intake.example.com',
        '',
        '                       active  conn                soft     hard             queue',
        'destination             rcpts   out  delivered  bounced  bounced  dropped    bytes',
        'the.tdc.queue               3     2      12045       17        1        2  1234567',
        'eu.intake.example.net       0     0         45        0        1        2        0',
        'intake.example.com          3     2      12000       17        0        0  1234567',
        '',
      ].join('\n'),
    );
  });

  it('shows only the.tdc.queue before any copy, and journaling off', () => {
    const s = buildStatusJson({
      version: '0.1.0', pid: 1, startedAt: T0 - 61_000, now: T0, milterListen: 'unix:/var/spool/postfix/tdc/tdc.sock',
      statusListen: '[::1]:8895', journaling: false, queue: { total: counters(), byDomain: new Map() },
      milter: { connectionsTotal: 1, activeSessions: 0, messagesTotal: 1, protocolErrors: 1 },
    });
    expect(formatStatusTable(s)).toBe(
      [
        'tdc-milter 0.1.0 (pid 1), up 00:01:01, as of 2026-11-23T18:20:01.000Z',
        'milter unix:/var/spool/postfix/tdc/tdc.sock: 0 sessions active, 1 connection, 1 message, 1 protocol error',
        'journaling off',
        '',
        '               active  conn                soft     hard           queue',
        'destination     rcpts   out  delivered  bounced  bounced  dropped  bytes',
        'the.tdc.queue       0     0          0        0        0        0      0',
        '',
      ].join('\n'),
    );
  });
});

describe('formatTrack', () => {
  function trackerWithHistory(): CopyTracker {
    const t = new CopyTracker();
    const one = lifeOf(copyFacts('4Xk2Lq0yZm.1', { mid: 14501404, messageId: '<abc@example.org>', intakeAddress: 'journal@intake.example.com', bytes: 5120 }), T0);
    t.record(one.enqueued());
    t.record(one.attempt(12));
    t.record(one.soft(310, '451 4.3.0 Try again later', 7));
    t.record(one.attempt(10_310, 2));
    t.record(one.start(10_311, 12, 2));
    t.record(one.delivered(10_402, '250 2.0.0 Ok: queued as 9F1C2\r\nX', 12, 2));
    const two = lifeOf(copyFacts('4Xk2Lq0yZm.2', { mid: 14501405, messageId: '<abc@example.org>', intakeAddress: 'j@eu.intake.example.net', bytes: 5120 }), T0);
    t.record(two.enqueued());
    return t;
  }

  it('heads each copy with message tracking\'s summary, then one line per event (time, event, DCID, detail), then the state', () => {
    const t = trackerWithHistory();
    const doc = buildTrackJson('4Xk2Lq0yZm', t.find('4Xk2Lq0yZm')!);
    expect(doc.matchedBy).toBe('queue');
    expect(formatTrack(doc.records)).toBe(
      [
        '23 Nov 2026 18:20:11 (GMT +00:00) TDC: Message 14501404 was successfully delivered for scanning with Cisco Secure Email Threat Defense.',
        'copy 4Xk2Lq0yZm.1  MID 14501404  queue id 4Xk2Lq0yZm  Message-ID <abc@example.org>  intake journal@intake.example.com',
        '  2026-11-23T18:20:01.000Z  enqueued        -        MID 14501404 queued for journal@intake.example.com (5120 bytes)',
        '  2026-11-23T18:20:01.012Z  attempt         -        attempt 1 of 2',
        "  2026-11-23T18:20:01.310Z  soft_bounce     DCID 7   4.3.0 Temporary failure at intake ('451 4.3.0 Try again later'); retry in 10 s",
        '  2026-11-23T18:20:11.310Z  attempt         -        attempt 2 of 2',
        '  2026-11-23T18:20:11.311Z  delivery_start  DCID 12  delivery start, attempt 2',
        '  2026-11-23T18:20:11.402Z  delivered       DCID 12  250 2.0.0 Ok: queued as 9F1C2\\r\\nX',
        '  final state: delivered',
        '',
        '23 Nov 2026 18:20:01 (GMT +00:00) TDC: Message 14501405 is queued for delivery to Cisco Secure Email Threat Defense.',
        'copy 4Xk2Lq0yZm.2  MID 14501405  queue id 4Xk2Lq0yZm  Message-ID <abc@example.org>  intake j@eu.intake.example.net',
        '  2026-11-23T18:20:01.000Z  enqueued        -        MID 14501405 queued for j@eu.intake.example.net (5120 bytes)',
        '  state: queued (not final yet)',
        '',
      ].join('\n'),
    );
  });

  it('says when events were left out and when there is no Message-ID', () => {
    const t = new CopyTracker({ maxEventsPerCopy: 2 });
    const c = lifeOf(copyFacts('Q.1', { mid: 4 }), T0);
    t.record(c.enqueued());
    t.record(c.attempt(1));
    t.record(c.hard(2, '550 5.7.1 no', 1));
    expect(formatTrack(buildTrackJson('Q.1', t.find('Q.1')!).records)).toBe(
      [
        '23 Nov 2026 18:20:01 (GMT +00:00) TDC: Message 4 delivery failed to Cisco Secure Email Threat Defense: Hard Bounced.',
        'copy Q.1  MID 4  queue id Q  Message-ID (none)  intake j@intake.example',
        '  2026-11-23T18:20:01.000Z  enqueued     -       MID 4 queued for j@intake.example (100 bytes)',
        '  … 1 event left out',
        "  2026-11-23T18:20:01.002Z  hard_bounce  DCID 1  5.7.1 Rejected by intake ('550 5.7.1 no')",
        '  final state: hard_bounce',
        '',
      ].join('\n'),
    );
    expect(formatTrack([])).toBe('');
  });
});

describe('formatUptime', () => {
  it.each([
    [0, '00:00:00'],
    [59.9, '00:00:59'],
    [3600, '01:00:00'],
    [86399, '23:59:59'],
    [86400, '1d 00:00:00'],
    [-3, '00:00:00'],
  ])('%s s → %s', (s, text) => {
    expect(formatUptime(s)).toBe(text);
  });
});
