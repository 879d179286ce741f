/**
 * The queue's timing and bookkeeping on a ManualClock with the delivery attempt faked: bounds,
 * age limit from enqueue (dropped at 120 s, not 119.999 s), one retry after exactly retryDelay,
 * how many attempts run at once, drain, counters, events and log lines.
 */
import { Forwarder, type CopyEvent, type ForwarderOptions, type JournalCopy, type AttemptContext, type DeliveryResult } from '../../../lib/forwarder';
import { dispatchTarget } from '../../../lib/forwarder/copy-queue';
import { ManualClock } from '../../../lib/util/clock';
import { MemoryLogger } from '../../../lib/util/logger';

const flush = (): Promise<void> => new Promise((r) => setImmediate(r));

const BASE: ForwarderOptions = {
  maxQueueAge: 120_000, retryDelay: 10_000, queueMaxMessages: 100, queueMaxBytes: 1_000_000,
  minConnections: 3, maxConnections: 10, messagesPerConnection: 10, connectTimeout: 1000,
  commandTimeout: 1000, heloName: 'gw.example.test',
};

interface Call {
  copy: JournalCopy;
  ctx: AttemptContext;
  at: number;
  resolve(r: DeliveryResult): void;
  reject(e: unknown): void;
}

function setup(overrides: Partial<ForwarderOptions> = {}) {
  const clock = new ManualClock();
  const logger = new MemoryLogger();
  const events: CopyEvent[] = [];
  const calls: Call[] = [];
  const deliver = (copy: JournalCopy, ctx: AttemptContext): Promise<DeliveryResult> =>
    new Promise((resolve, reject) => calls.push({ copy, ctx, at: clock.now(), resolve, reject }));
  const fwd = new Forwarder({ ...BASE, ...overrides }, { logger, clock, onEvent: (e) => events.push(e), deliver });
  return { clock, logger, events, calls, fwd, start: clock.now() };
}

let seq = 0;
function copy(bytes = 100, domain = 'intake.test'): JournalCopy {
  seq += 1;
  return { id: `Q${seq}.1`, queueId: `Q${seq}`, messageId: `<m${seq}@example.test>`, intakeAddress: `journal@${domain}`, raw: Buffer.alloc(bytes, 0x61) };
}

const err = (fields: Record<string, unknown>, message = 'failed'): Error => Object.assign(new Error(message), fields);
const r451 = (): Error => err({ code: 'EENVELOPE', responseCode: 451, response: '451 4.3.0 try later', command: 'MAIL FROM' });

describe('offer and the bounds', () => {
  it('enqueues instantly and logs the queued line with Message-ID and size', () => {
    const { fwd, logger, events } = setup();
    const c = copy(12345);
    expect(fwd.offer(c)).toBe(true);
    expect(logger.matching(/queued for delivery/)).toEqual([
      `MID ${c.id} queued for delivery to journal@intake.test (Message-ID <m${seq}@example.test>, 12345 bytes)`,
    ]);
    expect(events.map((e) => e.kind)).toEqual(['enqueued']);
    expect(fwd.counters()).toMatchObject({ enqueued: 1, activeRecipients: 1, queuedBytes: 12345 });
  });

  it('says so when the original had no Message-ID', () => {
    const { fwd, logger } = setup();
    fwd.offer({ ...copy(10), messageId: '' });
    expect(logger.matching(/queued for delivery/)[0]).toMatch(/\(no Message-ID, 10 bytes\)$/);
  });

  it('drops the copy over queueMaxMessages, logs and counts it', () => {
    const { fwd, logger, events } = setup({ queueMaxMessages: 2 });
    expect(fwd.offer(copy())).toBe(true);
    expect(fwd.offer(copy())).toBe(true);
    const third = copy();
    expect(fwd.offer(third)).toBe(false);
    expect(logger.matching(/dropped/)).toEqual([
      `MID ${third.id} dropped from the.tdc.queue: queue full (2/2 messages, 200/1000000 bytes, this copy 100 bytes)`,
    ]);
    expect(events.filter((e) => e.kind === 'dropped').map((e) => e.copyId)).toEqual([third.id]);
    expect(fwd.counters()).toMatchObject({ enqueued: 3, dropped: 1, activeRecipients: 2, queuedBytes: 200 });
  });

  it('drops the copy that would go over queueMaxBytes, and takes smaller ones again', () => {
    const { fwd } = setup({ queueMaxBytes: 1000 });
    expect(fwd.offer(copy(600))).toBe(true);
    expect(fwd.offer(copy(401))).toBe(false);
    expect(fwd.offer(copy(400))).toBe(true); // exactly at the limit
    expect(fwd.counters()).toMatchObject({ queuedBytes: 1000, dropped: 1, activeRecipients: 2 });
  });

  it('offerBuilt builds only a copy that can be queued; one that cannot is dropped and counted unbuilt', () => {
    const { fwd, logger, events } = setup({ queueMaxBytes: 1000 });
    const builds: string[] = [];
    const build = (c: JournalCopy) => () => { builds.push(c.id); return c.raw; };
    const a = copy(600);
    expect(fwd.offerBuilt(a, 500, build(a))).toBe(true);
    const b = copy(450);
    expect(fwd.offerBuilt(b, 401, build(b))).toBe(false); // not even its lower bound fits
    // The lower bound fits but the built copy does not: built, then refused like any offer.
    const c = copy(401);
    expect(fwd.offerBuilt(c, 300, build(c))).toBe(false);
    expect(builds).toEqual([a.id, c.id]);
    expect(logger.matching(/dropped from/)).toEqual([
      `MID ${b.id} dropped from the.tdc.queue: queue full (1/100 messages, 600/1000 bytes, this copy at least 401 bytes, not built)`,
      `MID ${c.id} dropped from the.tdc.queue: queue full (1/100 messages, 600/1000 bytes, this copy 401 bytes)`,
    ]);
    expect(events.map((e) => [e.copyId, e.kind])).toEqual([[a.id, 'enqueued'], [b.id, 'dropped'], [c.id, 'dropped']]);
    expect(fwd.counters()).toMatchObject({ enqueued: 3, dropped: 2, activeRecipients: 1, queuedBytes: 600 });
  });

  it('frees room when copies leave', async () => {
    const { fwd, calls } = setup({ queueMaxMessages: 1 });
    expect(fwd.offer(copy())).toBe(true);
    expect(fwd.offer(copy())).toBe(false);
    await flush();
    calls[0]!.resolve({ response: '250 ok' });
    await flush();
    expect(fwd.offer(copy())).toBe(true);
  });
});

describe('delivery outcomes', () => {
  it('delivered: Message done line with DCID and reply, counters, events', async () => {
    const { fwd, calls, logger, events } = setup();
    const c = copy();
    fwd.offer(c);
    await flush();
    expect(calls).toHaveLength(1);
    expect(calls[0]!.ctx.attempt).toBe(1);
    calls[0]!.resolve({ response: '250 2.0.0 Ok: queued', dcid: 12 });
    await flush();
    expect(logger.matching(/Message done/)).toEqual([`Message done DCID 12 MID ${c.id} to RID [0] [('250 2.0.0 Ok: queued')]`]);
    expect(events.map((e) => e.kind)).toEqual(['enqueued', 'attempt', 'delivered']);
    expect(events[2]).toMatchObject({ copyId: c.id, queueId: c.queueId, dcid: 12, detail: '250 2.0.0 Ok: queued' });
    expect(fwd.counters()).toMatchObject({ delivered: 1, activeRecipients: 0, queuedBytes: 0, softBounced: 0 });
  });

  it('5xx: hard bounce on the first attempt, no retry', async () => {
    const { fwd, calls, logger, clock } = setup();
    const c = copy();
    fwd.offer(c);
    await flush();
    calls[0]!.reject(err({ code: 'EENVELOPE', responseCode: 550, response: '550 5.7.1 Not allowed', dcid: 3 }));
    await flush();
    expect(logger.matching(/Hard bounce/)).toEqual([`Hard bounce DCID 3 MID ${c.id} to RID [0] - 5.7.1 Rejected by intake ('550 5.7.1 Not allowed')`]);
    clock.advance(60_000);
    await flush();
    expect(calls).toHaveLength(1);
    expect(fwd.counters()).toMatchObject({ hardBounced: 1, softBounced: 0, activeRecipients: 0 });
  });

  it('TLS failure: hard bounce, no retry', async () => {
    const { fwd, calls, clock } = setup();
    fwd.offer(copy());
    await flush();
    calls[0]!.reject(err({ code: 'ESOCKET', originalCode: 'DEPTH_ZERO_SELF_SIGNED_CERT', command: 'CONN' }, 'self-signed certificate'));
    await flush();
    clock.advance(60_000);
    await flush();
    expect(calls).toHaveLength(1);
    expect(fwd.counters()).toMatchObject({ hardBounced: 1 });
  });

  it('NXDOMAIN: hard bounce 5.1.2 Bad destination host', async () => {
    const { fwd, calls, logger } = setup();
    const c = copy();
    fwd.offer(c);
    await flush();
    calls[0]!.reject(Object.assign(new Error('MX lookup for intake.test: NXDOMAIN'), { code: 'EDNS', hard: true }));
    await flush();
    expect(logger.matching(/Hard bounce/)).toEqual([`Hard bounce MID ${c.id} to RID [0] - 5.1.2 Bad destination host ('MX lookup for intake.test: NXDOMAIN')`]);
  });

  it.each([
    ['451', r451()],
    ['503', err({ code: 'EENVELOPE', responseCode: 503, response: '503 bad sequence' })],
    ['552', err({ code: 'EMESSAGE', responseCode: 552, response: '552 too big' })],
    ['connection refused', err({ code: 'ESOCKET', originalCode: 'ECONNREFUSED', command: 'CONN' })],
    ['DNS SERVFAIL', Object.assign(new Error('MX lookup failed: ESERVFAIL'), { code: 'EDNS', hard: false })],
  ])('%s: retried exactly once after exactly retryDelay, then dropped with the last reason', async (_n, failure) => {
    const { fwd, calls, logger, clock, events } = setup();
    const c = copy();
    fwd.offer(c);
    await flush();
    const failedAt = clock.now();
    calls[0]!.reject(failure);
    await flush();
    expect(logger.matching(/Soft bounce/)).toHaveLength(1);
    expect(logger.matching(/Soft bounce/)[0]).toMatch(new RegExp(`^Soft bounce MID ${c.id.replace('.', '\\.')} to RID \\[0\\] - .*; retry in 10 s \\(attempt 1 of 2\\)$`));
    expect(fwd.counters()).toMatchObject({ softBounced: 1, activeRecipients: 1 });
    clock.advance(9_999);
    await flush();
    expect(calls).toHaveLength(1);
    clock.advance(1);
    await flush();
    expect(calls).toHaveLength(2);
    expect(calls[1]!.at - failedAt).toBe(10_000);
    expect(calls[1]!.ctx.attempt).toBe(2);
    calls[1]!.reject(failure);
    await flush();
    clock.advance(60_000);
    await flush();
    expect(calls).toHaveLength(2);
    expect(logger.matching(/dropped/)).toEqual([expect.stringMatching(new RegExp(`^MID ${c.id.replace('.', '\\.')} dropped from the\\.tdc\\.queue: retries spent \\(last: `))]);
    expect(events.map((e) => e.kind)).toEqual(['enqueued', 'attempt', 'retry', 'attempt', 'dropped']);
    expect(fwd.counters()).toMatchObject({ softBounced: 1, hardBounced: 0, dropped: 1, delivered: 0, activeRecipients: 0, queuedBytes: 0 });
  });

  it('a retry that succeeds ends delivered', async () => {
    const { fwd, calls, clock } = setup();
    fwd.offer(copy());
    await flush();
    calls[0]!.reject(r451());
    await flush();
    clock.advance(10_000);
    await flush();
    calls[1]!.resolve({ response: '250 ok' });
    await flush();
    expect(fwd.counters()).toMatchObject({ delivered: 1, softBounced: 1, dropped: 0, activeRecipients: 0 });
  });

  it('a throwing delivery function counts as a failed attempt (local: hard bounce)', async () => {
    const clock = new ManualClock();
    const logger = new MemoryLogger();
    const fwd = new Forwarder(BASE, { logger, clock, deliver: () => { throw new Error('bug'); } });
    fwd.offer(copy());
    await flush();
    expect(fwd.counters()).toMatchObject({ hardBounced: 1, activeRecipients: 0 });
  });
});

describe('queue age (maxQueueAge from enqueue)', () => {
  it('drops a copy waiting for its retry at exactly 120 s, not at 119.999 s', async () => {
    const { fwd, calls, clock, logger, events } = setup({ retryDelay: 200_000 });
    const c = copy();
    fwd.offer(c);
    await flush();
    clock.advance(5_000);
    calls[0]!.reject(r451());
    await flush();
    clock.advance(114_999); // 119.999 s since enqueue
    await flush();
    expect(fwd.counters().activeRecipients).toBe(1);
    clock.advance(1);
    await flush();
    expect(fwd.counters()).toMatchObject({ activeRecipients: 0, dropped: 1, queuedBytes: 0 });
    expect(logger.matching(/dropped/)).toEqual([`MID ${c.id} dropped from the.tdc.queue: too old (120 s in queue, max_queue_age 120 s)`]);
    expect(events.at(-1)).toMatchObject({ kind: 'dropped', copyId: c.id });
    clock.advance(300_000);
    await flush();
    expect(calls).toHaveLength(1); // the retry never ran
  });

  it('aborts an attempt in flight at the deadline and ignores its late result', async () => {
    const { fwd, calls, clock, logger } = setup();
    const c = copy();
    fwd.offer(c);
    await flush();
    const signal = calls[0]!.ctx.signal;
    clock.advance(119_999);
    expect(signal.aborted).toBe(false);
    clock.advance(1);
    expect(signal.aborted).toBe(true);
    calls[0]!.resolve({ response: '250 late' });
    await flush();
    expect(logger.matching(/Message done/)).toEqual([]);
    expect(fwd.counters()).toMatchObject({ delivered: 0, dropped: 1, activeRecipients: 0 });
  });

  it('counts the age from enqueue, so a late retry is cut short by the deadline', async () => {
    const { fwd, calls, clock } = setup({ maxQueueAge: 15_000, retryDelay: 10_000 });
    fwd.offer(copy());
    await flush();
    clock.advance(6_000);
    calls[0]!.reject(r451());
    await flush();
    clock.advance(9_000); // 15 s since enqueue, the retry would be due at 16 s
    await flush();
    expect(fwd.counters()).toMatchObject({ dropped: 1, activeRecipients: 0 });
    clock.advance(10_000);
    await flush();
    expect(calls).toHaveLength(1);
  });

  it('keeps the age limit a copy was enqueued with across reconfigure', async () => {
    const { fwd, clock } = setup({ maxConnections: 1, minConnections: 1 });
    fwd.offer(copy());
    fwd.offer(copy());
    await flush();
    fwd.reconfigure({ ...BASE, maxConnections: 1, minConnections: 1, maxQueueAge: 500_000 });
    fwd.offer(copy());
    clock.advance(120_000);
    await flush();
    expect(fwd.counters()).toMatchObject({ dropped: 2, activeRecipients: 1 });
  });
});

describe('concurrency', () => {
  it.each([
    [1, 3], [3, 3], [30, 3], [31, 4], [95, 10], [500, 10],
  ])('dispatchTarget(%i copies) = %i with min 3, max 10, 10 per connection', (active, target) => {
    expect(dispatchTarget(active, { minConnections: 3, maxConnections: 10, messagesPerConnection: 10 })).toBe(target);
  });

  it('never exceeds maxConnections and never goes below min(minConnections, queued)', () => {
    expect(dispatchTarget(2, { minConnections: 5, maxConnections: 3, messagesPerConnection: 1 })).toBe(3);
  });

  it('runs at least minConnections attempts at once for a small queue, more as the backlog grows', async () => {
    const { fwd, calls } = setup();
    for (let i = 0; i < 5; i += 1) fwd.offer(copy());
    await flush();
    expect(calls).toHaveLength(3);
    for (let i = 0; i < 60; i += 1) fwd.offer(copy());
    await flush();
    expect(calls).toHaveLength(7); // 65 copies → ceil(65/10) = 7
    for (let i = 0; i < 200; i += 1) fwd.offer(copy());
    await flush();
    expect(calls).toHaveLength(10);
    calls[0]!.resolve({ response: '250' });
    await flush();
    expect(calls).toHaveLength(11); // a finished slot is refilled
  });

  it('a retry goes to the front of the line', async () => {
    const { fwd, calls, clock } = setup({ minConnections: 1, maxConnections: 1 });
    const first = copy();
    fwd.offer(first);
    await flush();
    calls[0]!.reject(r451());
    fwd.offer(copy());
    await flush();
    expect(calls).toHaveLength(2); // the second copy took the free slot
    clock.advance(10_000);
    fwd.offer(copy());
    calls[1]!.resolve({ response: '250' });
    await flush();
    expect(calls[2]!.copy.id).toBe(first.id);
  });
});

describe('drain and close', () => {
  it('refuses new copies with a shutting down drop line and resolves when the queue empties', async () => {
    const { fwd, calls, logger } = setup();
    fwd.offer(copy());
    await flush();
    let done = false;
    const p = fwd.drain(30_000).then(() => { done = true; });
    const late = copy();
    expect(fwd.offer(late)).toBe(false);
    expect(logger.matching(/shutting down/)).toEqual([`MID ${late.id} dropped from the.tdc.queue: shutting down`]);
    await flush();
    expect(done).toBe(false);
    calls[0]!.resolve({ response: '250' });
    await p;
    expect(fwd.counters()).toMatchObject({ delivered: 1, dropped: 1, activeRecipients: 0 });
  });

  it('drops and logs what is left when the grace time is over', async () => {
    const { fwd, calls, clock, logger } = setup({ retryDelay: 60_000 });
    fwd.offer(copy());
    fwd.offer(copy());
    await flush();
    calls[0]!.reject(r451());
    await flush();
    let done = false;
    const p = fwd.drain(5_000).then(() => { done = true; });
    clock.advance(4_999);
    await flush();
    expect(done).toBe(false);
    clock.advance(1);
    await p;
    expect(logger.matching(/dropped from the\.tdc\.queue: shutting down/)).toHaveLength(2);
    expect(calls[1]!.ctx.signal.aborted).toBe(true);
    expect(fwd.counters()).toMatchObject({ dropped: 2, activeRecipients: 0, queuedBytes: 0 });
  });

  it('resolves at once on an empty queue', async () => {
    const { fwd } = setup();
    await fwd.drain(10_000);
  });

  it('close() drops leftovers so every copy ends exactly once', async () => {
    const { fwd, events } = setup();
    fwd.offer(copy());
    fwd.offer(copy());
    await flush();
    await fwd.close();
    const finals = events.filter((e) => ['delivered', 'hard_bounce', 'dropped'].includes(e.kind));
    expect(finals).toHaveLength(2);
    expect(fwd.offer(copy())).toBe(false);
  });
});

describe('counters per intake domain', () => {
  it('keeps each domain apart and sums to the queue totals', async () => {
    const { fwd, calls } = setup();
    fwd.offer(copy(10, 'a.test'));
    fwd.offer(copy(20, 'b.test'));
    fwd.offer(copy(30, 'B.TEST'));
    await flush();
    calls[0]!.resolve({ response: '250' });
    calls[1]!.reject(err({ code: 'EENVELOPE', responseCode: 550, response: '550 no' }));
    await flush();
    const by = fwd.countersByDomain();
    expect(by.get('a.test')).toMatchObject({ enqueued: 1, delivered: 1, activeRecipients: 0 });
    expect(by.get('b.test')).toMatchObject({ enqueued: 2, hardBounced: 1, activeRecipients: 1, queuedBytes: 30 });
    expect(fwd.counters()).toMatchObject({ enqueued: 3, delivered: 1, hardBounced: 1, activeRecipients: 1, queuedBytes: 30, connectionsOut: 0 });
  });

  it('every copy ends in exactly one of delivered, hard bounced, dropped', async () => {
    const { fwd, calls, clock, events } = setup({ queueMaxMessages: 40, retryDelay: 1000 });
    const outcomes = [() => ({ response: '250' }), r451, () => err({ code: 'EENVELOPE', responseCode: 550, response: '550' })];
    for (let i = 0; i < 50; i += 1) fwd.offer(copy());
    for (let round = 0; round < 20; round += 1) {
      await flush();
      for (const [i, call] of calls.entries()) {
        if ((call as { done?: boolean }).done) continue;
        (call as { done?: boolean }).done = true;
        const o = outcomes[i % 3]!();
        if (o instanceof Error) call.reject(o);
        else call.resolve(o);
      }
      await flush();
      clock.advance(1000);
    }
    clock.advance(200_000);
    await flush();
    const finals = new Map<string, number>();
    for (const e of events) if (['delivered', 'hard_bounce', 'dropped'].includes(e.kind)) finals.set(e.copyId, (finals.get(e.copyId) ?? 0) + 1);
    expect(finals.size).toBe(50);
    expect([...finals.values()].every((n) => n === 1)).toBe(true);
    const c = fwd.counters();
    expect(c.delivered + c.hardBounced + c.dropped).toBe(50);
    expect(c.activeRecipients).toBe(0);
  });
});
