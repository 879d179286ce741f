/**
 * Readiness (`/readyz`) from synthetic forwarder events and the caller's clock: not ready once every
 * attempt has failed for ready_failing_time, at once while the queue is full (or just refused a copy
 * for lack of room); ready again after one delivery.
 */
import { IntakeHealth, QUEUE_FULL_HOLD_MS } from '../../../lib/status';
import type { CopyFacts, ForwarderEvent } from '../../../lib/forwarder/events';

const T0 = Date.UTC(2026, 10, 23, 18, 0, 0);
const copy: CopyFacts = { copyId: 'Q.1', mid: 1, queueId: 'Q', messageId: '', intakeAddress: 'j@i.example', destination: 'i.example', bytes: 10 };
const soft = (at: number): ForwarderEvent => ({
  type: 'soft_bounce', at, copy, attempt: 1, retryInMs: 10_000,
  result: { outcome: 'soft', dsn: '4.4.1', reply: '', detail: 'connection refused\r\nX', phase: 'connect', kind: 'network' },
});
const delivered = (at: number): ForwarderEvent => ({
  type: 'delivered', at, copy, attempt: 1, result: { outcome: 'delivered', dsn: '2.0.0', reply: '250 ok', detail: '', phase: 'message' },
});

describe('IntakeHealth', () => {
  const input = (now: number, messages = 0, bytes = 0) => ({
    now, failingTime: 60_000, queue: { messages, bytes }, limits: { maxMessages: 10, maxBytes: 1000 },
  });

  it('is ready with no traffic, and while failures are younger than ready_failing_time', () => {
    const h = new IntakeHealth();
    expect(h.readiness(input(T0))).toEqual({ ready: true, reason: 'ok' });
    h.observe(soft(T0));
    h.observe(soft(T0 + 30_000));
    expect(h.readiness(input(T0 + 59_999)).ready).toBe(true);
  });

  it('is not ready once every attempt has failed for ready_failing_time, with the last failure on one line', () => {
    const h = new IntakeHealth();
    h.observe(soft(T0));
    h.observe(soft(T0 + 30_000));
    const r = h.readiness(input(T0 + 60_000));
    expect(r.ready).toBe(false);
    expect(r.reason).toBe('intake failing: every delivery attempt for 60 s has failed (ready_failing_time 60 s); last: 4.4.1 connection refused X');
    h.observe(delivered(T0 + 61_000));
    expect(h.readiness(input(T0 + 62_000))).toEqual({ ready: true, reason: 'ok' });
    // A new outage counts from its own first failure.
    h.observe(soft(T0 + 100_000));
    expect(h.readiness(input(T0 + 150_000)).ready).toBe(true);
    expect(h.readiness(input(T0 + 160_000)).ready).toBe(false);
  });

  it('is not ready while the queue is full, by count or by bytes, or just refused a copy', () => {
    const h = new IntakeHealth();
    expect(h.readiness(input(T0, 10, 0))).toEqual({ ready: false, reason: 'queue full: 10 of queue_max_messages 10 copies queued' });
    expect(h.readiness(input(T0, 1, 1000))).toEqual({ ready: false, reason: 'queue full: 1000 of queue_max_bytes 1000 bytes queued' });
    h.observe({ type: 'dropped', at: T0, copy, reason: 'queue_full', attempted: false, detail: 'queue full' });
    expect(h.readiness(input(T0 + 5000, 3, 900)).reason).toBe('queue full: a copy was dropped for lack of room 5 s ago (3 copies, 900 bytes queued)');
    expect(h.readiness(input(T0 + QUEUE_FULL_HOLD_MS, 3, 900)).ready).toBe(true);
  });
});
