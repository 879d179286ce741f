/**
 * The metrics fed by the forwarder's event stream (`observeForwarderEvent`), with synthetic
 * `ForwarderEvent`s: drops by reason and destination, the last delivery, the copy lag; and the
 * build, reload and queue-limit gauges.
 */
import { StatusMetrics, type QueueCounters } from '../../../lib/status';
import type { CopyFacts, DropReason, ForwarderEvent } from '../../../lib/forwarder/events';

const T0 = Date.UTC(2026, 10, 23, 18, 0, 0);

function counters(): QueueCounters {
  return { activeRecipients: 0, connectionsOut: 0, delivered: 0, softBounced: 0, hardBounced: 0, dropped: 0, queuedBytes: 0, enqueued: 0 };
}

function facts(copyId: string, destination = 'intake.example'): CopyFacts {
  return { copyId, mid: 1, queueId: copyId.split('.')[0]!, messageId: '<m@x>', intakeAddress: `j@${destination}`, destination, bytes: 100 };
}

const result = { outcome: 'delivered' as const, dsn: '2.0.0', reply: '250 ok', detail: '', phase: 'message' as const };

function drop(copyId: string, reason: DropReason, at: number, destination?: string, attempted = false): ForwarderEvent {
  return { type: 'dropped', at, copy: facts(copyId, destination), reason, attempted, detail: reason };
}

function samples(text: string, name: string): string[] {
  return text.split('\n').filter((l) => l.startsWith(`${name}{`) || l.startsWith(`${name} `));
}

describe('StatusMetrics.observeForwarderEvent', () => {
  let metrics: StatusMetrics;
  beforeEach(() => {
    metrics = new StatusMetrics({
      queue: () => ({ total: counters(), byDomain: new Map() }),
      milter: () => ({ connectionsTotal: 0, activeSessions: 0, messagesTotal: 0, protocolErrors: 0 }),
      version: '1.2.3',
      startedAt: T0,
      limits: () => ({ queueMaxMessages: 1000, queueMaxBytes: 104857600 }),
    });
  });

  it('starts with every drop reason of the whole queue at 0, and the start as the last delivery', async () => {
    const text = await metrics.metricsText();
    expect(samples(text, 'tdc_dropped_total')).toEqual([
      'tdc_dropped_total{destination="the.tdc.queue",reason="queue_full"} 0',
      'tdc_dropped_total{destination="the.tdc.queue",reason="too_old"} 0',
      'tdc_dropped_total{destination="the.tdc.queue",reason="retries_spent"} 0',
      'tdc_dropped_total{destination="the.tdc.queue",reason="shutting_down"} 0',
    ]);
    expect(samples(text, 'tdc_last_delivered_timestamp_seconds')).toEqual([
      `tdc_last_delivered_timestamp_seconds{destination="the.tdc.queue"} ${T0 / 1000}`,
    ]);
  });

  it('counts drops of copies never attempted by reason, for the whole queue and the intake domain', async () => {
    metrics.observeForwarderEvent(drop('A.1', 'queue_full', T0));
    metrics.observeForwarderEvent(drop('A.2', 'queue_full', T0, 'other.example'));
    metrics.observeForwarderEvent(drop('B.1', 'too_old', T0));
    // Removed after an attempt: the gateway counts these hard bounced (tdc_hard_bounced_total), not dropped.
    metrics.observeForwarderEvent(drop('C.1', 'retries_spent', T0, undefined, true));
    metrics.observeForwarderEvent(drop('D.1', 'too_old', T0, undefined, true));
    const text = await metrics.metricsText();
    expect(samples(text, 'tdc_dropped_total')).toEqual([
      'tdc_dropped_total{destination="the.tdc.queue",reason="queue_full"} 2',
      'tdc_dropped_total{destination="the.tdc.queue",reason="too_old"} 1',
      'tdc_dropped_total{destination="the.tdc.queue",reason="retries_spent"} 0',
      'tdc_dropped_total{destination="the.tdc.queue",reason="shutting_down"} 0',
      'tdc_dropped_total{destination="intake.example",reason="queue_full"} 1',
      'tdc_dropped_total{destination="intake.example",reason="too_old"} 1',
      'tdc_dropped_total{destination="other.example",reason="queue_full"} 1',
    ]);
  });

  it('sets the last delivery per destination and observes the copy lag from enqueue to delivery', async () => {
    metrics.observeForwarderEvent({ type: 'enqueued', at: T0, copy: facts('A.1') });
    metrics.observeForwarderEvent({ type: 'attempt', at: T0 + 10, copy: facts('A.1'), attempt: 1 });
    metrics.observeForwarderEvent({ type: 'delivered', at: T0 + 1500, copy: facts('A.1'), attempt: 1, result });
    metrics.observeForwarderEvent({ type: 'enqueued', at: T0 + 2000, copy: facts('B.1') });
    metrics.observeForwarderEvent({ type: 'hard_bounce', at: T0 + 2100, copy: facts('B.1'), attempt: 1, result: { ...result, outcome: 'hard' } });
    const text = await metrics.metricsText();
    expect(samples(text, 'tdc_last_delivered_timestamp_seconds')).toEqual([
      `tdc_last_delivered_timestamp_seconds{destination="the.tdc.queue"} ${(T0 + 1500) / 1000}`,
      `tdc_last_delivered_timestamp_seconds{destination="intake.example"} ${(T0 + 1500) / 1000}`,
    ]);
    expect(samples(text, 'tdc_copy_lag_seconds_count')).toEqual(['tdc_copy_lag_seconds_count 1']);
    expect(samples(text, 'tdc_copy_lag_seconds_sum')).toEqual(['tdc_copy_lag_seconds_sum 1.5']);
    expect(samples(text, 'tdc_copy_lag_seconds_bucket')).toContain('tdc_copy_lag_seconds_bucket{le="1"} 0');
    expect(samples(text, 'tdc_copy_lag_seconds_bucket')).toContain('tdc_copy_lag_seconds_bucket{le="2.5"} 1');
  });

  it('ignores events that say nothing about drops or deliveries', async () => {
    const before = await metrics.metricsText();
    metrics.observeForwarderEvent({ type: 'connection_opened', at: T0, dcid: 1, destination: 'intake.example', host: 'mx', ip: '127.0.0.1', port: 25, localAddress: '127.0.0.1' });
    metrics.observeForwarderEvent({ type: 'dns_error', at: T0, domain: 'x.example', rrtype: 'MX', error: 'ServFail', hard: false });
    expect(samples(await metrics.metricsText(), 'tdc_dropped_total')).toEqual(samples(before, 'tdc_dropped_total'));
  });

  it('exports build info, the queue limits and the reload state', async () => {
    let text = await metrics.metricsText();
    expect(samples(text, 'tdc_build_info')).toEqual([`tdc_build_info{version="1.2.3",node="${process.versions.node}"} 1`]);
    expect(samples(text, 'tdc_queue_max_messages')).toEqual(['tdc_queue_max_messages 1000']);
    expect(samples(text, 'tdc_queue_max_bytes')).toEqual(['tdc_queue_max_bytes 104857600']);
    expect(samples(text, 'tdc_config_last_reload_successful')).toEqual(['tdc_config_last_reload_successful 1']);
    expect(samples(text, 'tdc_config_last_reload_success_timestamp_seconds')).toEqual([`tdc_config_last_reload_success_timestamp_seconds ${T0 / 1000}`]);
    metrics.noteReload(true, T0 + 60_000);
    metrics.noteReload(false, T0 + 120_000);
    text = await metrics.metricsText();
    expect(samples(text, 'tdc_config_last_reload_successful')).toEqual(['tdc_config_last_reload_successful 0']);
    expect(samples(text, 'tdc_config_last_reload_success_timestamp_seconds')).toEqual([`tdc_config_last_reload_success_timestamp_seconds ${(T0 + 60_000) / 1000}`]);
    metrics.noteReload(true, T0 + 180_000);
    expect(samples(await metrics.metricsText(), 'tdc_config_last_reload_successful')).toEqual(['tdc_config_last_reload_successful 1']);
  });
});
