/**
 * Message tracking: history order and final states, lookups by copy id / queue id / Message-ID,
 * eviction of the oldest copies with their index entries, the per-copy event cap.
 */
import { CopyTracker, messageIdKey, type TrackedEvent } from '../../../lib/status';

const T0 = Date.UTC(2026, 10, 23, 18, 20, 1);

function ev(kind: TrackedEvent['kind'], copyId: string, atOffset: number, detail = '', dcid?: number): TrackedEvent {
  const e: TrackedEvent = { kind, copyId, queueId: copyId.replace(/\.\d+$/, ''), at: T0 + atOffset, detail };
  if (dcid !== undefined) e.dcid = dcid;
  return e;
}

describe('CopyTracker', () => {
  it('keeps the ordered history of a copy and ends in the final state', () => {
    const t = new CopyTracker();
    t.noteCopy({ id: '4Xk2Lq0yZm.1', queueId: '4Xk2Lq0yZm', messageId: '<abc@example.org>', intakeAddress: 'j@intake.example' });
    t.record(ev('enqueued', '4Xk2Lq0yZm.1', 0, '1234 bytes'));
    t.record(ev('attempt', '4Xk2Lq0yZm.1', 10, 'to [192.0.2.1]:25', 7));
    expect(t.byCopyId('4Xk2Lq0yZm.1')!.state).toBe('delivering');
    t.record(ev('retry', '4Xk2Lq0yZm.1', 300, '451 4.3.0 try later', 7));
    expect(t.byCopyId('4Xk2Lq0yZm.1')).toMatchObject({ state: 'retrying', final: false });
    t.record(ev('attempt', '4Xk2Lq0yZm.1', 10_300, 'to [192.0.2.1]:25', 8));
    t.record(ev('delivered', '4Xk2Lq0yZm.1', 10_400, '250 2.0.0 Ok', 8));

    const rec = t.byCopyId('4Xk2Lq0yZm.1')!;
    expect(rec).toMatchObject({
      copyId: '4Xk2Lq0yZm.1',
      queueId: '4Xk2Lq0yZm',
      messageId: '<abc@example.org>',
      intakeAddress: 'j@intake.example',
      state: 'delivered',
      final: true,
      omittedEvents: 0,
    });
    expect(rec.events.map((e) => [e.kind, e.at - T0, e.dcid, e.detail])).toEqual([
      ['enqueued', 0, undefined, '1234 bytes'],
      ['attempt', 10, 7, 'to [192.0.2.1]:25'],
      ['retry', 300, 7, '451 4.3.0 try later'],
      ['attempt', 10_300, 8, 'to [192.0.2.1]:25'],
      ['delivered', 10_400, 8, '250 2.0.0 Ok'],
    ]);
    expect('dcid' in rec.events[0]!).toBe(false);
  });

  it.each([
    ['hard_bounce', '550 5.1.1 no such user'],
    ['dropped', 'queue full'],
  ] as const)('%s is final and a late event does not reopen it', (kind, detail) => {
    const t = new CopyTracker();
    t.record(ev('enqueued', 'Q.1', 0));
    t.record(ev(kind, 'Q.1', 5, detail));
    t.record(ev('retry', 'Q.1', 6, 'late'));
    const rec = t.byCopyId('Q.1')!;
    expect(rec.state).toBe(kind);
    expect(rec.final).toBe(true);
    expect(rec.events).toHaveLength(3);
  });

  it('takes the Message-ID whether noteCopy comes before or after the first event', () => {
    const t = new CopyTracker();
    t.record(ev('dropped', 'A.1', 0, 'queue full'));
    t.noteCopy({ id: 'A.1', queueId: 'A', messageId: '<m1@x>' });
    expect(t.byMessageId('<m1@x>').map((r) => r.copyId)).toEqual(['A.1']);
    expect(t.byCopyId('A.1')!.events).toHaveLength(1);
  });

  it('finds all copies of a queue id in copy id order, and by Message-ID with or without brackets', () => {
    const t = new CopyTracker();
    for (const n of [10, 2, 1]) {
      t.noteCopy({ id: `QID.${n}`, queueId: 'QID', messageId: '<same@example.org>' });
      t.record(ev('enqueued', `QID.${n}`, n));
    }
    t.noteCopy({ id: 'OTHER.1', queueId: 'OTHER', messageId: '<same@example.org>' });
    expect(t.byQueueId('QID').map((r) => r.copyId)).toEqual(['QID.1', 'QID.2', 'QID.10']);
    expect(t.byMessageId('same@example.org').map((r) => r.copyId)).toEqual(['OTHER.1', 'QID.1', 'QID.2', 'QID.10']);
    expect(t.byMessageId(' <same@example.org> ')).toHaveLength(4);
    expect(t.byMessageId('<other@example.org>')).toEqual([]);
    expect(t.byQueueId('NOPE')).toEqual([]);
    expect(t.byMessageId('')).toEqual([]);
  });

  it('find() tries copy id, then queue id, then Message-ID', () => {
    const t = new CopyTracker();
    t.noteCopy({ id: 'Q.1', queueId: 'Q', messageId: '<Q.1>' });
    t.noteCopy({ id: 'Q.2', queueId: 'Q', messageId: '<mid@x>' });
    expect(t.find('Q.1')).toMatchObject({ matchedBy: 'copy', records: [{ copyId: 'Q.1' }] });
    expect(t.find('Q')!.matchedBy).toBe('queue');
    expect(t.find('Q')!.records).toHaveLength(2);
    expect(t.find('<mid@x>')).toMatchObject({ matchedBy: 'message-id', records: [{ copyId: 'Q.2' }] });
    expect(t.find('nothing')).toBeUndefined();
  });

  it('a copy without Message-ID is not found by the empty string', () => {
    const t = new CopyTracker();
    t.noteCopy({ id: 'Q.1', queueId: 'Q', messageId: '' });
    expect(t.find('')).toBeUndefined();
    expect(t.byCopyId('Q.1')!.messageId).toBe('');
  });

  it('forgets the oldest copies beyond capacity, from every index', () => {
    const t = new CopyTracker({ capacity: 3 });
    for (let i = 1; i <= 5; i++) {
      t.noteCopy({ id: `M${i}.1`, queueId: `M${i}`, messageId: `<m${i}@x>` });
      t.record(ev('enqueued', `M${i}.1`, i));
    }
    expect(t.size).toBe(3);
    expect(t.byCopyId('M1.1')).toBeUndefined();
    expect(t.byCopyId('M2.1')).toBeUndefined();
    expect(t.byQueueId('M2')).toEqual([]);
    expect(t.byMessageId('<m2@x>')).toEqual([]);
    expect(t.find('M2')).toBeUndefined();
    expect(['M3.1', 'M4.1', 'M5.1'].map((id) => t.byCopyId(id)?.copyId)).toEqual(['M3.1', 'M4.1', 'M5.1']);
    // Events for a remembered copy do not make it younger: age is when it was first seen.
    t.record(ev('delivered', 'M3.1', 100));
    t.noteCopy({ id: 'M6.1', queueId: 'M6', messageId: '<m6@x>' });
    expect(t.byCopyId('M3.1')).toBeUndefined();
    expect(t.byCopyId('M4.1')).toBeDefined();
  });

  it('keeps one copy of a queue id findable when its sibling was evicted', () => {
    const t = new CopyTracker({ capacity: 2 });
    t.noteCopy({ id: 'Q.1', queueId: 'Q', messageId: '<q@x>' });
    t.noteCopy({ id: 'Q.2', queueId: 'Q', messageId: '<q@x>' });
    t.noteCopy({ id: 'R.1', queueId: 'R', messageId: '<r@x>' });
    expect(t.byQueueId('Q').map((r) => r.copyId)).toEqual(['Q.2']);
    expect(t.byMessageId('<q@x>').map((r) => r.copyId)).toEqual(['Q.2']);
  });

  it('defaults to 10,000 copies', () => {
    const t = new CopyTracker();
    expect(t.capacity).toBe(10_000);
    for (let i = 0; i < 10_001; i++) t.record(ev('enqueued', `Q${i}.1`, i));
    expect(t.size).toBe(10_000);
    expect(t.byCopyId('Q0.1')).toBeUndefined();
    expect(t.byCopyId('Q1.1')).toBeDefined();
  });

  it('caps the events of one copy, keeping the first and the latest', () => {
    const t = new CopyTracker({ maxEventsPerCopy: 4 });
    t.record(ev('enqueued', 'Q.1', 0, 'first'));
    for (let i = 1; i <= 6; i++) t.record(ev(i % 2 ? 'attempt' : 'retry', 'Q.1', i, `e${i}`));
    const rec = t.byCopyId('Q.1')!;
    expect(rec.events.map((e) => e.detail)).toEqual(['first', 'e4', 'e5', 'e6']);
    expect(rec.omittedEvents).toBe(3);
  });

  it('hands out copies: changing a returned record does not change the history', () => {
    const t = new CopyTracker();
    t.record(ev('enqueued', 'Q.1', 0, 'x'));
    const rec = t.byCopyId('Q.1')!;
    rec.events[0]!.detail = 'changed';
    rec.events.push({ kind: 'delivered', at: 0, detail: '' });
    expect(t.byCopyId('Q.1')!.events).toEqual([{ kind: 'enqueued', at: T0, detail: 'x' }]);
  });

  it('validates its options', () => {
    expect(() => new CopyTracker({ capacity: 0 })).toThrow('capacity: expected an integer >= 1, got 0');
    expect(() => new CopyTracker({ capacity: 1.5 })).toThrow(/capacity/);
    expect(() => new CopyTracker({ maxEventsPerCopy: 1 })).toThrow(/maxEventsPerCopy: expected an integer >= 2/);
  });

  it('messageIdKey strips whitespace and one pair of angle brackets', () => {
    expect(messageIdKey(' <a@b> ')).toBe('a@b');
    expect(messageIdKey('a@b')).toBe('a@b');
    expect(messageIdKey('<a@b')).toBe('<a@b');
  });
});
