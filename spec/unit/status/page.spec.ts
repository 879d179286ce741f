/**
 * The status page renderer and the rate history behind its charts: every value is escaped, a
 * not-ready daemon says why, copy links go to /track/<id>, rates come from successive samples
 * (plus the live totals), and the ring keeps only its capacity.
 */
import { RateHistory, buildStatusJson, renderStatusPage, type CopyRecord, type QueueCounters } from '../../../lib/status';

const T0 = Date.UTC(2026, 10, 23, 18, 0, 0);
const zero = (): QueueCounters => ({ activeRecipients: 0, connectionsOut: 0, delivered: 0, softBounced: 0, hardBounced: 0, dropped: 0, queuedBytes: 0, enqueued: 0 });
const milter = (messagesTotal: number) => ({ connectionsTotal: 1, activeSessions: 0, messagesTotal, protocolErrors: 0 });

describe('RateHistory', () => {
  it('gives per-second rates between samples, with the live totals as the newest point', () => {
    const h = new RateHistory(3, 10_000);
    h.sample(T0, zero(), milter(0));
    h.sample(T0 + 10_000, { ...zero(), delivered: 20, dropped: 5, activeRecipients: 7 }, milter(30));
    expect(h.points()).toEqual([{ at: T0 + 10_000, messages: 3, enqueued: 0, delivered: 2, bounced: 0, dropped: 0.5, queued: 7 }]);
    const live = RateHistory.take(T0 + 15_000, { ...zero(), delivered: 30, dropped: 5 }, milter(30));
    expect(h.points(live).map((p) => p.delivered)).toEqual([2, 2]);
    expect(h.points(RateHistory.take(T0 + 10_500, zero(), milter(0)))).toHaveLength(1); // under a second: no live point
    h.sample(T0 + 20_000, zero(), milter(30)); // a counter that went down reads as 0
    h.sample(T0 + 30_000, zero(), milter(30));
    expect(h.samples.map((s) => s.at)).toEqual([T0 + 10_000, T0 + 20_000, T0 + 30_000]);
    expect(h.points()[0]!.delivered).toBe(0);
  });
});

describe('renderStatusPage', () => {
  const status = buildStatusJson({
    version: '1.0.0', startedAt: T0, now: T0 + 5000, milterListen: 'inet:127.0.0.1:8894', statusListen: '127.0.0.1:8895',
    journaling: true, intakeAddress: 'j@intake.example',
    queue: { total: { ...zero(), delivered: 1234 }, byDomain: new Map([['<b>evil.example', { ...zero(), delivered: 1234 }]]) },
    milter: milter(9),
  });
  const rec: CopyRecord = {
    copyId: 'Q<1>.1', mid: 7, queueId: 'Q<1>', messageId: '<a"b@x>', intakeAddress: 'j@intake.example', state: 'dropped', final: true,
    summary: 'TDC: Message 7 was not delivered to Cisco Secure Email Threat Defense: dropped (too old <script>).', summaryAt: T0,
    omittedEvents: 0, events: [{ kind: 'dropped', at: T0, detail: 'too old <script>' }],
  };

  it('escapes every value and links copies to /track/<id>', () => {
    const html = renderStatusPage({ status, readiness: { ready: true, reason: 'ok' }, points: [], recent: [rec], intervalSeconds: 10 });
    expect(html).not.toContain('<b>evil');
    expect(html).not.toContain('<script>alert');
    expect(html).toContain('&#60;b&#62;evil.example');
    expect(html).toContain('href="/track/Q%3C1%3E.1"');
    expect(html).toContain('too old &#60;script&#62;');
    expect(html).toContain('<td data-field="delivered">1,234</td>');
    expect(html).toContain('collecting samples…');
    expect(html.match(/<script>/g)).toHaveLength(1); // our own refresh script only
  });

  it('says not ready and why', () => {
    const html = renderStatusPage({ status, readiness: { ready: false, reason: 'queue full: 10 of 10' }, points: [], recent: [], intervalSeconds: 10 });
    expect(html).toContain('<span id="readiness" class="badge bad" title="queue full: 10 of 10">not ready</span>');
    expect(html).toContain('<section id="not-ready"><h2>Not ready</h2><p>queue full: 10 of 10</p></section>');
    expect(html).toContain('No journal copies yet.');
  });
});
