/**
 * status takes the forwarder's and milter's types. These checks
 * make `tsc` (run by `npm test`) fail when a contract drifts, and feed real-typed objects through.
 */
import type { ForwarderCounters, ForwarderEvent } from '../../../lib/forwarder';
import type { MilterStats } from '../../../lib/milter';
import { CopyTracker, StatusMetrics, type MilterStatsSnapshot, type QueueCounters } from '../../../lib/status';
import { copyFacts, lifeOf } from '../../support/copy-events';

// Compile-time: each forwarder/milter type is assignable to what status takes.
const asCounters = (c: ForwarderCounters): QueueCounters => c;
const asStats = (s: MilterStats): MilterStatsSnapshot => s;

describe('status against the module contracts', () => {
  it('tracks a copy from the forwarder\'s event stream alone (connection events pass by)', () => {
    const t = new CopyTracker();
    const c = lifeOf(copyFacts('Q.1', { messageId: '<m@x>' }), 1);
    const events: ForwarderEvent[] = [
      c.enqueued(),
      c.attempt(1),
      { type: 'connection_opened', at: 2, dcid: 1, destination: 'intake.example', host: 'mx', ip: '192.0.2.1', port: 25, localAddress: '192.0.2.9' },
      c.delivered(2, '250 ok', 1),
    ];
    for (const e of events) t.record(e);
    expect(t.find('<m@x>')).toMatchObject({ matchedBy: 'message-id', records: [{ state: 'delivered', intakeAddress: 'j@intake.example' }] });
  });

  it('exports forwarder- and milter-typed numbers', async () => {
    const total: ForwarderCounters = {
      activeRecipients: 1, connectionsOut: 1, delivered: 2, softBounced: 0, hardBounced: 0, dropped: 0, queuedBytes: 10, enqueued: 3,
    };
    const stats: MilterStats = { connectionsTotal: 5, activeSessions: 1, messagesTotal: 4, protocolErrors: 0 };
    const m = new StatusMetrics({ queue: () => ({ total: asCounters(total), byDomain: new Map() }), milter: () => asStats(stats) });
    const text = await m.metricsText();
    expect(text).toContain('tdc_enqueued_total{destination="the.tdc.queue"} 3\n');
    expect(text).toContain('tdc_milter_messages_total 4\n');
  });
});
