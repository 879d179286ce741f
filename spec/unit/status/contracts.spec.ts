/**
 * status takes the forwarder's and milter's types. These checks
 * make `tsc` (run by `npm test`) fail when a contract drifts, and feed real-typed objects through.
 */
import type { CopyEvent, ForwarderCounters, JournalCopy } from '../../../lib/forwarder';
import type { MilterStats } from '../../../lib/milter';
import { CopyTracker, StatusMetrics, type MilterStatsSnapshot, type QueueCounters, type TrackedCopy, type TrackedEvent } from '../../../lib/status';

// Compile-time: each forwarder/milter type is assignable to what status takes.
const asEvent = (e: CopyEvent): TrackedEvent => e;
const asCopy = (c: JournalCopy): TrackedCopy => c;
const asCounters = (c: ForwarderCounters): QueueCounters => c;
const asStats = (s: MilterStats): MilterStatsSnapshot => s;

describe('status against the module contracts', () => {
  it('tracks a forwarder-typed copy and its events', () => {
    const t = new CopyTracker();
    const copy: JournalCopy = { id: 'Q.1', queueId: 'Q', messageId: '<m@x>', intakeAddress: 'j@intake.example', raw: Buffer.from('x') };
    t.noteCopy(asCopy(copy));
    const events: CopyEvent[] = [
      { kind: 'enqueued', copyId: 'Q.1', queueId: 'Q', at: 1, detail: '1 bytes' },
      { kind: 'attempt', copyId: 'Q.1', queueId: 'Q', at: 2, dcid: 1, detail: '[192.0.2.1]:25' },
      { kind: 'delivered', copyId: 'Q.1', queueId: 'Q', at: 3, dcid: 1, detail: '250 ok' },
    ];
    for (const e of events) t.record(asEvent(e));
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
