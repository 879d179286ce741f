/**
 * Prometheus metrics: the exposition text carries the source functions' values at scrape time, per
 * destination; decisions and end-of-body latency as reported; a private registry per instance.
 */
import { register as globalRegistry } from 'prom-client';
import { EOB_BUCKETS, StatusMetrics, type MilterStatsSnapshot, type QueueCounters, type QueueSnapshot } from '../../../lib/status';
import { copyFacts, lifeOf } from '../../support/copy-events';
import { refused } from '../../support/fake-agent';

function counters(over: Partial<QueueCounters> = {}): QueueCounters {
  return { activeRecipients: 0, connectionsOut: 0, delivered: 0, softBounced: 0, hardBounced: 0, dropped: 0, queuedBytes: 0, enqueued: 0, ...over };
}

/** Sample lines of one metric, without HELP/TYPE. */
function samples(text: string, name: string): string[] {
  return text.split('\n').filter((l) => l.startsWith(`${name}{`) || l.startsWith(`${name} `));
}

describe('StatusMetrics', () => {
  let queue: QueueSnapshot;
  let milter: MilterStatsSnapshot;
  let metrics: StatusMetrics;
  let queueCalls: number;

  beforeEach(() => {
    queue = { total: counters(), byDomain: new Map() };
    milter = { connectionsTotal: 0, activeSessions: 0, messagesTotal: 0, protocolErrors: 0 };
    queueCalls = 0;
    metrics = new StatusMetrics({
      queue: () => {
        queueCalls += 1;
        return queue;
      },
      milter: () => milter,
    });
  });

  it('exports the forwarder counters for the.tdc.queue and each intake domain, sorted', async () => {
    queue = {
      total: counters({ activeRecipients: 3, connectionsOut: 2, delivered: 120, softBounced: 4, hardBounced: 1, dropped: 2, queuedBytes: 45678, enqueued: 130 }),
      byDomain: new Map([
        ['zz.intake.example', counters({ activeRecipients: 1, connectionsOut: 1, delivered: 20, queuedBytes: 1000, enqueued: 21 })],
        ['aa.intake.example', counters({ activeRecipients: 2, connectionsOut: 1, delivered: 100, softBounced: 4, hardBounced: 1, dropped: 2, queuedBytes: 44678, enqueued: 109 })],
      ]),
    };
    const text = await metrics.metricsText();
    expect(queueCalls).toBe(1); // one consistent snapshot per scrape
    const expectRows = (name: string, type: 'gauge' | 'counter', values: [number, number, number]) => {
      expect(text).toContain(`# TYPE ${name} ${type}\n`);
      expect(samples(text, name)).toEqual([
        `${name}{destination="the.tdc.queue"} ${values[0]}`,
        `${name}{destination="aa.intake.example"} ${values[1]}`,
        `${name}{destination="zz.intake.example"} ${values[2]}`,
      ]);
    };
    expectRows('tdc_queue_active_recipients', 'gauge', [3, 2, 1]);
    expectRows('tdc_connections_out', 'gauge', [2, 1, 1]);
    expectRows('tdc_queue_bytes', 'gauge', [45678, 44678, 1000]);
    expectRows('tdc_enqueued_total', 'counter', [130, 109, 21]);
    expectRows('tdc_delivered_total', 'counter', [120, 100, 20]);
    expectRows('tdc_soft_bounced_total', 'counter', [4, 4, 0]);
    expectRows('tdc_hard_bounced_total', 'counter', [1, 1, 0]);
    // Drops are counted by reason from the forwarder's events (see the forwarder event specs).
    expect(samples(text, 'tdc_dropped_total')).toHaveLength(4);
  });

  it('reads the sources again at every scrape; a domain that left the table leaves the text', async () => {
    queue = { total: counters({ delivered: 1 }), byDomain: new Map([['a.example', counters({ delivered: 1 })]]) };
    expect(samples(await metrics.metricsText(), 'tdc_delivered_total')).toEqual([
      'tdc_delivered_total{destination="the.tdc.queue"} 1',
      'tdc_delivered_total{destination="a.example"} 1',
    ]);
    queue = { total: counters({ delivered: 5 }), byDomain: new Map() };
    expect(samples(await metrics.metricsText(), 'tdc_delivered_total')).toEqual(['tdc_delivered_total{destination="the.tdc.queue"} 5']);
  });

  it('never exports a negative or non-finite count', async () => {
    queue = { total: counters({ delivered: Number.NaN, queuedBytes: -5 }), byDomain: new Map() };
    const text = await metrics.metricsText();
    expect(samples(text, 'tdc_delivered_total')).toEqual(['tdc_delivered_total{destination="the.tdc.queue"} 0']);
    expect(samples(text, 'tdc_queue_bytes')).toEqual(['tdc_queue_bytes{destination="the.tdc.queue"} 0']);
  });

  it('exports the milter stats', async () => {
    milter = { connectionsTotal: 17, activeSessions: 3, messagesTotal: 42, protocolErrors: 1 };
    const text = await metrics.metricsText();
    expect(text).toContain('# TYPE tdc_milter_sessions_active gauge\ntdc_milter_sessions_active 3\n');
    expect(text).toContain('# TYPE tdc_milter_connections_total counter\ntdc_milter_connections_total 17\n');
    expect(text).toContain('# TYPE tdc_milter_messages_total counter\ntdc_milter_messages_total 42\n');
    expect(text).toContain('# TYPE tdc_milter_protocol_errors_total counter\ntdc_milter_protocol_errors_total 1\n');
    milter = { connectionsTotal: 18, activeSessions: 0, messagesTotal: 43, protocolErrors: 1 };
    const again = await metrics.metricsText();
    expect(samples(again, 'tdc_milter_connections_total')).toEqual(['tdc_milter_connections_total 18']);
    expect(samples(again, 'tdc_milter_sessions_active')).toEqual(['tdc_milter_sessions_active 0']);
  });

  it('subscribes to the event stream: attempts by outcome and retry-table row, connection errors by details', async () => {
    const c = lifeOf(copyFacts('Q.1'), 0);
    metrics.observeForwarderEvent(c.enqueued());
    metrics.observeForwarderEvent(c.soft(1, '451 4.3.0 later', 3));
    metrics.observeForwarderEvent(c.delivered(2, '250 ok', 3));
    metrics.observeForwarderEvent(c.hard(3, '550 5.1.1 no', 4));
    metrics.observeForwarderEvent({ type: 'dropped', at: 4, copy: copyFacts('Q.2'), reason: 'retries_spent', attempted: true, detail: 'retries spent', last: refused() });
    metrics.observeForwarderEvent({ type: 'connection_error', at: 5, dcid: 5, destination: 'x', host: 'x', ip: '127.0.0.1', port: 25, localAddress: '', details: 'refused', reason: 'ECONNREFUSED' });
    const text = await metrics.metricsText();
    expect(samples(text, 'tdc_delivery_attempts_total').sort()).toEqual([
      'tdc_delivery_attempts_total{outcome="delivered",kind="none"} 1',
      'tdc_delivery_attempts_total{outcome="hard",kind="smtp_5xx"} 1',
      'tdc_delivery_attempts_total{outcome="soft",kind="network"} 1',
      'tdc_delivery_attempts_total{outcome="soft",kind="smtp_4xx"} 1',
    ]);
    expect(samples(text, 'tdc_connection_errors_total')).toEqual(['tdc_connection_errors_total{details="refused"} 1']);
  });

  it('counts journal decisions by policy and outcome', async () => {
    metrics.decision('DEFAULT', 'journaled');
    metrics.decision('DEFAULT', 'journaled');
    metrics.decision('finance', 'skipped', 3);
    metrics.decision('', 'not_journaled');
    metrics.decision('finance', 'journaled', 0);
    const text = await metrics.metricsText();
    expect(text).toContain('# TYPE tdc_journal_decisions_total counter\n');
    expect(samples(text, 'tdc_journal_decisions_total').sort()).toEqual([
      'tdc_journal_decisions_total{policy="(none)",outcome="not_journaled"} 1',
      'tdc_journal_decisions_total{policy="DEFAULT",outcome="journaled"} 2',
      'tdc_journal_decisions_total{policy="finance",outcome="skipped"} 3',
    ]);
  });

  it('puts end-of-body latency into sub-millisecond to 100 ms buckets', async () => {
    expect(EOB_BUCKETS[0]).toBeLessThan(0.001);
    expect(EOB_BUCKETS[EOB_BUCKETS.length - 1]).toBe(0.1);
    metrics.observeEob(0.0003);
    metrics.observeEob(0.002);
    metrics.observeEob(0.5);
    metrics.observeEob(-1); // ignored
    const text = await metrics.metricsText();
    expect(text).toContain('# TYPE tdc_eob_duration_seconds histogram\n');
    const lines = samples(text, 'tdc_eob_duration_seconds_bucket');
    expect(lines).toContain('tdc_eob_duration_seconds_bucket{le="0.00025"} 0');
    expect(lines).toContain('tdc_eob_duration_seconds_bucket{le="0.0005"} 1');
    expect(lines).toContain('tdc_eob_duration_seconds_bucket{le="0.0025"} 2');
    expect(lines).toContain('tdc_eob_duration_seconds_bucket{le="0.1"} 2');
    expect(lines).toContain('tdc_eob_duration_seconds_bucket{le="+Inf"} 3');
    expect(samples(text, 'tdc_eob_duration_seconds_count')).toEqual(['tdc_eob_duration_seconds_count 3']);
  });

  it('timeJournal observes even when the handler throws, and passes the result through', async () => {
    expect(metrics.timeJournal(() => 7)).toBe(7);
    expect(() => metrics.timeJournal(() => { throw new Error('boom'); })).toThrow('boom');
    const text = await metrics.metricsText();
    expect(samples(text, 'tdc_journal_duration_seconds_count')).toEqual(['tdc_journal_duration_seconds_count 2']);
    expect(samples(text, 'tdc_eob_duration_seconds_count')).toEqual(['tdc_eob_duration_seconds_count 0']);
  });

  it('uses a private registry: two instances coexist and the global registry stays empty', async () => {
    const other = new StatusMetrics({ queue: () => queue, milter: () => milter });
    other.decision('X', 'error');
    expect(await metrics.metricsText()).not.toContain('policy="X"');
    expect(globalRegistry.getSingleMetric('tdc_delivered_total')).toBeUndefined();
    expect(metrics.contentType).toMatch(/^text\/plain; version=0\.0\.4/);
  });

  it('adds process metrics only when asked', async () => {
    expect(await metrics.metricsText()).not.toContain('process_cpu_seconds_total');
    const withProcess = new StatusMetrics({ queue: () => queue, milter: () => milter, processMetrics: true });
    expect(await withProcess.metricsText()).toContain('process_cpu_seconds_total');
  });
});
