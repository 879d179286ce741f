/**
 * `tophosts` against the gateway's sample (receiver-facts §4): the same heading, legend and column
 * headers in the same order, rows sorted by active recipients, thousands separators, the `*` of a
 * host whose last attempt failed on the connection; and the host-down state from the event stream.
 */
import { HostDownState, buildStatusJson, formatTophosts, gatewayTime, thousands, type QueueCounters } from '../../../lib/status';
import { copyFacts, lifeOf } from '../../support/copy-events';
import { refused, tlsError, soft } from '../../support/fake-agent';
import { TOPHOSTS_SAMPLE } from '../../support/gateway-samples';

const T0 = Date.UTC(2024, 1, 17, 1, 55, 34); // Fri Feb 16 19:55:34 2024 CST

function counters(over: Partial<QueueCounters> = {}): QueueCounters {
  return { activeRecipients: 0, connectionsOut: 0, delivered: 0, softBounced: 0, hardBounced: 0, dropped: 0, queuedBytes: 0, enqueued: 0, ...over };
}

/** A line's words (the sample's spacing is not consistent, its words and their order are). */
const words = (line: string): string[] => line.trim().split(/\s+/);

function status(isDown?: (d: string) => boolean) {
  return buildStatusJson({
    version: '0.1.0', startedAt: T0, now: T0, milterListen: 'inet:127.0.0.1:8894', statusListen: '127.0.0.1:8895', journaling: true,
    queue: {
      total: counters({ activeRecipients: 5, connectionsOut: 3, delivered: 104_163, softBounced: 12, hardBounced: 1_204 }),
      byDomain: new Map([
        ['a.example', counters({ activeRecipients: 1, connectionsOut: 0, delivered: 4_163, hardBounced: 1_204 })],
        ['beta.cmd.cisco.com', counters({ activeRecipients: 4, connectionsOut: 3, delivered: 100_000, softBounced: 12 })],
      ]),
    },
    milter: { connectionsTotal: 0, activeSessions: 0, messagesTotal: 0, protocolErrors: 0 },
    ...(isDown ? { isDown } : {}),
  });
}

describe('formatTophosts', () => {
  it('has the sample\'s heading, legend and two header lines, word for word', () => {
    const ours = formatTophosts(status(), { timeZone: 'America/Chicago' }).split('\n');
    const sample = TOPHOSTS_SAMPLE.split('\n');
    expect(ours[0]).toBe('');
    expect(ours[1]).toBe(sample[0]);
    expect(ours[2]).toBe(sample[1]);
    expect(ours[3]).toBe('');
    expect(words(ours[4]!)).toEqual(words(sample[3]!));
    expect(words(ours[5]!)).toEqual(words(sample[4]!));
  });

  it('rows: rank, host, Active Recip., Conn. Out, Deliv. Recip., Soft and Hard Bounced, with thousands separators, most active first', () => {
    const ours = formatTophosts(status(), { timeZone: 'UTC' }).split('\n');
    expect(ours.slice(6, 9).map(words)).toEqual([
      ['1', 'the.tdc.queue', '5', '3', '104,163', '12', '1,204'],
      ['2', 'beta.cmd.cisco.com', '4', '3', '100,000', '12', '0'],
      ['3', 'a.example', '1', '0', '4,163', '0', '1,204'],
    ]);
    // The sample's row reads the same way: the queue, then the five numbers.
    expect(words(TOPHOSTS_SAMPLE.split('\n')[5]!).slice(1)).toEqual(['the.tdc.queue', '1', '0', '104,163', '0', '0']);
  });

  it('columns line up under their headers', () => {
    const ours = formatTophosts(status(), { timeZone: 'UTC' }).split('\n');
    const header = ours[4]!;
    const row = ours[7]!;
    for (const [h, v] of [['Active', '4'], ['Conn.', '3'], ['Deliv.', '100,000'], ['Soft', '12'], ['Hard', '0']] as const) {
      expect(row.indexOf(v, header.indexOf(h))).toBe(header.indexOf(h));
    }
  });

  it('marks a host that was down at its last attempt with *', () => {
    const ours = formatTophosts(status((d) => d === 'a.example'), { timeZone: 'UTC' }).split('\n');
    expect(words(ours[8]!)[1]).toBe('*a.example');
    expect(words(ours[7]!)[1]).toBe('beta.cmd.cisco.com');
  });

  it('thousands and the gateway\'s time', () => {
    expect([0, 999, 1000, 104163, 1234567].map(thousands)).toEqual(['0', '999', '1,000', '104,163', '1,234,567']);
    expect(gatewayTime(new Date(T0), 'America/Chicago')).toBe('Fri Feb 16 19:55:34 2024 CST');
    expect(gatewayTime(new Date(Date.UTC(2024, 1, 5, 9, 3, 5)), 'UTC')).toBe('Mon Feb  5 09:03:05 2024 UTC');
  });
});

describe('HostDownState', () => {
  it('is down when the last attempt failed on the connection, up again after a delivery or an SMTP answer', () => {
    const h = new HostDownState();
    const a = lifeOf(copyFacts('Q.1', { intakeAddress: 'j@a.example' }), T0);
    expect(h.isDown('a.example')).toBe(false);
    h.observe({ type: 'soft_bounce', at: T0, copy: a.enqueued().copy, attempt: 1, result: refused(), retryInMs: 10 });
    expect(h.isDown('a.example')).toBe(true);
    expect(h.isDown('the.tdc.queue')).toBe(true);
    h.observe(a.delivered(1, '250 ok'));
    expect(h.isDown('a.example')).toBe(false);
    h.observe({ type: 'hard_bounce', at: T0, copy: a.enqueued().copy, attempt: 1, result: tlsError() });
    expect(h.isDown('a.example')).toBe(true);
    h.observe({ type: 'soft_bounce', at: T0, copy: a.enqueued().copy, attempt: 1, result: soft(), retryInMs: 10 });
    expect(h.isDown('a.example')).toBe(false); // the server answered: the host is up
    expect(h.isDown('b.example')).toBe(false);
  });
});
