/**
 * Message tracking from the forwarder's event stream: history order and final states (a copy removed
 * after an attempt is hard bounced), the gateway's summary line, lookups by copy id / MID / queue id /
 * Message-ID, eviction of the oldest copies with their index entries, the per-copy event cap.
 */
import { CopyTracker, messageIdKey } from '../../../lib/status';
import { copyFacts, lifeOf } from '../../support/copy-events';

const T0 = Date.UTC(2026, 10, 23, 18, 20, 1);

function copy(copyId: string, mid = 1000, messageId = '') {
  return lifeOf(copyFacts(copyId, { mid, messageId }), T0);
}

describe('CopyTracker', () => {
  it('keeps the ordered history of a copy and ends in the final state, with the gateway\'s summary', () => {
    const t = new CopyTracker();
    const c = lifeOf(copyFacts('4Xk2Lq0yZm.1', { mid: 14501404, messageId: '<abc@example.org>', intakeAddress: 'j@intake.example', bytes: 1234 }), T0);
    t.record(c.enqueued());
    t.record(c.attempt(10));
    expect(t.byCopyId('4Xk2Lq0yZm.1')!.state).toBe('delivering');
    t.record(c.soft(300, '451 4.3.0 try later', 7));
    expect(t.byCopyId('4Xk2Lq0yZm.1')).toMatchObject({ state: 'retrying', final: false });
    t.record(c.attempt(10_300, 2));
    t.record(c.start(10_350, 8, 2));
    t.record(c.delivered(10_400, '250 2.0.0 Ok', 8, 2));

    const rec = t.byCopyId('4Xk2Lq0yZm.1')!;
    expect(rec).toMatchObject({
      copyId: '4Xk2Lq0yZm.1', mid: 14501404, queueId: '4Xk2Lq0yZm', messageId: '<abc@example.org>', intakeAddress: 'j@intake.example',
      state: 'delivered', final: true, omittedEvents: 0, summaryAt: T0 + 10_400,
      summary: 'TDC: Message 14501404 was successfully delivered for scanning with Cisco Secure Email Threat Defense.',
    });
    expect(rec.events.map((e) => [e.kind, e.at - T0, e.dcid, e.detail])).toEqual([
      ['enqueued', 0, undefined, 'MID 14501404 queued for j@intake.example (1234 bytes)'],
      ['attempt', 10, undefined, 'attempt 1 of 2'],
      ['soft_bounce', 300, 7, "4.3.0 Temporary failure at intake ('451 4.3.0 try later'); retry in 10 s"],
      ['attempt', 10_300, undefined, 'attempt 2 of 2'],
      ['delivery_start', 10_350, 8, 'delivery start, attempt 2'],
      ['delivered', 10_400, 8, '250 2.0.0 Ok'],
    ]);
    expect('dcid' in rec.events[0]!).toBe(false);
  });

  it.each([
    ['hard_bounce', (c: ReturnType<typeof copy>) => c.hard(5, '550 5.1.1 no such user', 3), 'hard_bounce', 'Hard Bounced.'],
    ['TLS hard bounce', (c: ReturnType<typeof copy>) => c.hard(5, '', 3, { kind: 'tls', detail: 'TLS Error' }), 'hard_bounce', 'TLS Error.'],
    ['removed after an attempt', (c: ReturnType<typeof copy>) => c.dropped(5, 'too old', true), 'hard_bounce', 'Hard Bounced.'],
    ['dropped, never attempted', (c: ReturnType<typeof copy>) => c.dropped(5, 'queue full (1/1 messages)'), 'dropped', 'was not delivered'],
  ] as const)('%s is final, summarised in the gateway\'s words, and a late event does not reopen it', (_n, end, state, words) => {
    const t = new CopyTracker();
    const c = copy('Q.1', 4);
    t.record(c.enqueued());
    t.record(end(c));
    t.record(c.soft(6, '451 late'));
    const rec = t.byCopyId('Q.1')!;
    expect(rec).toMatchObject({ state, final: true });
    expect(rec.summary).toContain(words);
    expect(rec.summary).toMatch(/^TDC: Message 4 /);
    expect(rec.events).toHaveLength(3);
  });

  it('the TLS summary is the tracking sample\'s wording', () => {
    const t = new CopyTracker();
    t.record(copy('Q.1', 4).hard(0, 'cert', 1, { kind: 'tls', detail: 'TLS Error' }));
    expect(t.byCopyId('Q.1')!.summary).toBe('TDC: Message 4 delivery failed to Cisco Secure Email Threat Defense: TLS Error.');
  });

  it('finds all copies of a queue id in copy id order, and by Message-ID with or without brackets', () => {
    const t = new CopyTracker();
    for (const n of [10, 2, 1]) t.record(copy(`QID.${n}`, n, '<same@example.org>').enqueued(n));
    t.record(copy('OTHER.1', 99, '<same@example.org>').enqueued());
    expect(t.byQueueId('QID').map((r) => r.copyId)).toEqual(['QID.1', 'QID.2', 'QID.10']);
    expect(t.byMessageId('same@example.org').map((r) => r.copyId)).toEqual(['OTHER.1', 'QID.1', 'QID.2', 'QID.10']);
    expect(t.byMessageId(' <same@example.org> ')).toHaveLength(4);
    expect(t.byMessageId('<other@example.org>')).toEqual([]);
    expect(t.byQueueId('NOPE')).toEqual([]);
    expect(t.byMessageId('')).toEqual([]);
  });

  it('find() tries copy id, then MID, then queue id, then Message-ID', () => {
    const t = new CopyTracker();
    t.record(copy('Q.1', 31, '<Q.1>').enqueued());
    t.record(copy('Q.2', 32, '<mid@x>').enqueued());
    expect(t.find('Q.1')).toMatchObject({ matchedBy: 'copy', records: [{ copyId: 'Q.1' }] });
    expect(t.find('32')).toMatchObject({ matchedBy: 'mid', records: [{ copyId: 'Q.2' }] });
    expect(t.find('Q')!.matchedBy).toBe('queue');
    expect(t.find('Q')!.records).toHaveLength(2);
    expect(t.find('<mid@x>')).toMatchObject({ matchedBy: 'message-id', records: [{ copyId: 'Q.2' }] });
    expect(t.find('33')).toBeUndefined();
    expect(t.find('nothing')).toBeUndefined();
  });

  it('a copy without Message-ID is not found by the empty string', () => {
    const t = new CopyTracker();
    t.record(copy('Q.1').enqueued());
    expect(t.find('')).toBeUndefined();
    expect(t.byCopyId('Q.1')!.messageId).toBe('');
  });

  it('ignores connection and DNS events', () => {
    const t = new CopyTracker();
    t.record({ type: 'connection_closed', at: T0, dcid: 1, destination: 'x', delivered: 0 });
    t.record({ type: 'dns_error', at: T0, domain: 'x', rrtype: 'MX', error: 'NXDomain', hard: true });
    expect(t.size).toBe(0);
  });

  it('forgets the oldest copies beyond capacity, from every index', () => {
    const t = new CopyTracker({ capacity: 3 });
    for (let i = 1; i <= 5; i++) t.record(copy(`M${i}.1`, i, `<m${i}@x>`).enqueued(i));
    expect(t.size).toBe(3);
    expect(t.byCopyId('M1.1')).toBeUndefined();
    expect(t.byCopyId('M2.1')).toBeUndefined();
    expect(t.byQueueId('M2')).toEqual([]);
    expect(t.byMessageId('<m2@x>')).toEqual([]);
    expect(t.byMid(2)).toBeUndefined();
    expect(t.find('M2')).toBeUndefined();
    expect(['M3.1', 'M4.1', 'M5.1'].map((id) => t.byCopyId(id)?.copyId)).toEqual(['M3.1', 'M4.1', 'M5.1']);
    // Events for a remembered copy do not make it younger: age is when it was first seen.
    t.record(copy('M3.1', 3, '<m3@x>').delivered(100, '250 ok'));
    t.record(copy('M6.1', 6, '<m6@x>').enqueued());
    expect(t.byCopyId('M3.1')).toBeUndefined();
    expect(t.byCopyId('M4.1')).toBeDefined();
  });

  it('keeps one copy of a queue id findable when its sibling was evicted', () => {
    const t = new CopyTracker({ capacity: 2 });
    t.record(copy('Q.1', 1, '<q@x>').enqueued());
    t.record(copy('Q.2', 2, '<q@x>').enqueued());
    t.record(copy('R.1', 3, '<r@x>').enqueued());
    expect(t.byQueueId('Q').map((r) => r.copyId)).toEqual(['Q.2']);
    expect(t.byMessageId('<q@x>').map((r) => r.copyId)).toEqual(['Q.2']);
  });

  it('defaults to 10,000 copies', () => {
    const t = new CopyTracker();
    expect(t.capacity).toBe(10_000);
    for (let i = 0; i < 10_001; i++) t.record(copy(`Q${i}.1`, i + 1).enqueued(i));
    expect(t.size).toBe(10_000);
    expect(t.byCopyId('Q0.1')).toBeUndefined();
    expect(t.byCopyId('Q1.1')).toBeDefined();
  });

  it('caps the events of one copy, keeping the first and the latest', () => {
    const t = new CopyTracker({ maxEventsPerCopy: 4 });
    const c = copy('Q.1');
    t.record(c.enqueued());
    for (let i = 1; i <= 6; i++) t.record(i % 2 ? c.attempt(i, i) : c.soft(i, `451 e${i}`));
    const rec = t.byCopyId('Q.1')!;
    expect(rec.events.map((e) => e.at - T0)).toEqual([0, 4, 5, 6]);
    expect(rec.omittedEvents).toBe(3);
  });

  it('hands out copies: changing a returned record does not change the history', () => {
    const t = new CopyTracker();
    t.record(copy('Q.1').enqueued());
    const rec = t.byCopyId('Q.1')!;
    rec.events[0]!.detail = 'changed';
    rec.events.push({ kind: 'delivered', at: 0, detail: '' });
    expect(t.byCopyId('Q.1')!.events).toEqual([{ kind: 'enqueued', at: T0, detail: 'MID 1000 queued for j@intake.example (100 bytes)' }]);
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
