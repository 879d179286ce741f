/**
 * The queue on a ManualClock with a fake DeliveryAgent: bounds, MIDs, soft → one retry after exactly
 * retry_delay, hard → done, max_queue_age at exactly 120 s, the connections it asks the agent for,
 * drain, the event stream and the counters folded from it (the accounting identity).
 */
import { Forwarder, ID_EPOCH, type ForwarderEvent, type ForwarderOptions, type JournalCopy, type CopyEvent } from '../../../lib/forwarder';
import { ManualClock } from '../../../lib/util/clock';
import { MemoryLogger } from '../../../lib/util/logger';
import { FakeAgent, delivered, hard, nxdomain, refused, soft, tlsError } from '../../support/fake-agent';

const flush = (): Promise<void> => new Promise((r) => setImmediate(r));

const BASE: ForwarderOptions = {
  maxQueueAge: 120_000, retryDelay: 10_000, queueMaxMessages: 100, queueMaxBytes: 1_000_000,
  minConnections: 3, maxConnections: 10, messagesPerConnection: 100, connectTimeout: 1000,
  commandTimeout: 1000, heloName: 'gw.example.test',
};

function setup(overrides: Partial<ForwarderOptions> = {}, clock = new ManualClock()) {
  const logger = new MemoryLogger();
  const events: ForwarderEvent[] = [];
  const agent = new FakeAgent(clock);
  const fwd = new Forwarder({ ...BASE, ...overrides }, {
    logger, clock, onEvent: (e) => events.push(e),
    agent: (hooks) => { agent.hooks = hooks; return agent; },
  });
  const copyEvents = (): CopyEvent[] => events.filter((e): e is CopyEvent => 'copy' in e && e.type !== 'dns_error');
  const types = (): string[] => copyEvents().map((e) => e.type);
  return { clock, logger, events, agent, fwd, copyEvents, types };
}

let seq = 0;
function copy(bytes = 100, domain = 'intake.test'): JournalCopy {
  seq += 1;
  return { id: `Q${seq}.1`, queueId: `Q${seq}`, messageId: `<m${seq}@example.test>`, intakeAddress: `journal@${domain}`, raw: Buffer.alloc(bytes, 0x61) };
}

/** enqueued = delivered + hard bounced + dropped + queued, from the counters. */
function identityHolds(fwd: Forwarder): boolean {
  const c = fwd.counters();
  return c.enqueued === c.delivered + c.hardBounced + c.dropped + c.activeRecipients;
}

describe('offer, MIDs and the bounds', () => {
  it('enqueues instantly with a numeric MID and an enqueued event carrying the whole copy', () => {
    const { fwd, copyEvents, clock } = setup();
    const c = copy(12345);
    expect(fwd.offer(c)).toBe(true);
    expect(copyEvents()).toEqual([{
      type: 'enqueued', at: clock.now(),
      copy: {
        copyId: c.id, mid: clock.now() - ID_EPOCH, queueId: c.queueId, messageId: c.messageId,
        intakeAddress: 'journal@intake.test', destination: 'intake.test', bytes: 12345,
      },
    }]);
    expect(fwd.counters()).toMatchObject({ enqueued: 1, activeRecipients: 1, queuedBytes: 12345 });
  });

  it('MIDs strictly increase within a millisecond and follow the clock, so a restart continues above', () => {
    const clock = new ManualClock();
    const first = setup({}, clock);
    for (let i = 0; i < 3; i += 1) first.fwd.offer(copy());
    const mids = first.copyEvents().map((e) => e.copy.mid);
    const t = clock.now() - ID_EPOCH;
    expect(mids).toEqual([t, t + 1, t + 2]);
    // "Restart": a new forwarder 1 s later starts above everything the first one gave.
    clock.advance(1000);
    const second = setup({}, clock);
    second.fwd.offer(copy());
    expect(second.copyEvents()[0]!.copy.mid).toBe(t + 1000);
    expect(second.copyEvents()[0]!.copy.mid).toBeGreaterThan(Math.max(...mids));
  });

  it('DCIDs come from their own sequence, handed to the agent as nextDcid', () => {
    const { agent, clock } = setup();
    const a = agent.hooks!.nextDcid();
    const b = agent.hooks!.nextDcid();
    expect([a, b]).toEqual([clock.now() - ID_EPOCH, clock.now() - ID_EPOCH + 1]);
  });

  it('drops the copy over queueMaxMessages with an unattempted dropped event, and counts it', () => {
    const { fwd, copyEvents } = setup({ queueMaxMessages: 2 });
    expect(fwd.offer(copy())).toBe(true);
    expect(fwd.offer(copy())).toBe(true);
    const third = copy();
    expect(fwd.offer(third)).toBe(false);
    expect(copyEvents().at(-1)).toMatchObject({
      type: 'dropped', reason: 'queue_full', attempted: false, copy: { copyId: third.id },
      detail: 'queue full (2/2 messages, 200/1000000 bytes, this copy 100 bytes)',
    });
    expect(fwd.counters()).toMatchObject({ enqueued: 3, dropped: 1, hardBounced: 0, activeRecipients: 2, queuedBytes: 200 });
    expect(identityHolds(fwd)).toBe(true);
  });

  it('drops the copy that would go over queueMaxBytes, and takes smaller ones again', () => {
    const { fwd } = setup({ queueMaxBytes: 1000 });
    expect(fwd.offer(copy(600))).toBe(true);
    expect(fwd.offer(copy(401))).toBe(false);
    expect(fwd.offer(copy(400))).toBe(true); // exactly at the limit
    expect(fwd.counters()).toMatchObject({ queuedBytes: 1000, dropped: 1, activeRecipients: 2 });
  });

  it('offerBuilt builds only a copy that can be queued', () => {
    const { fwd, copyEvents } = setup({ queueMaxBytes: 1000 });
    const builds: string[] = [];
    const build = (c: JournalCopy) => () => { builds.push(c.id); return c.raw; };
    const a = copy(600);
    expect(fwd.offerBuilt(a, 500, build(a))).toBe(true);
    const b = copy(450);
    expect(fwd.offerBuilt(b, 401, build(b))).toBe(false); // not even its lower bound fits
    const c = copy(401);
    expect(fwd.offerBuilt(c, 300, build(c))).toBe(false); // built, then refused like any offer
    expect(builds).toEqual([a.id, c.id]);
    expect(copyEvents().map((e) => [e.copy.copyId, e.type, e.type === 'dropped' ? e.detail : ''])).toEqual([
      [a.id, 'enqueued', ''],
      [b.id, 'dropped', 'queue full (1/100 messages, 600/1000 bytes, this copy at least 401 bytes, not built)'],
      [c.id, 'dropped', 'queue full (1/100 messages, 600/1000 bytes, this copy 401 bytes)'],
    ]);
    expect(fwd.counters()).toMatchObject({ enqueued: 3, dropped: 2, activeRecipients: 1, queuedBytes: 600 });
  });
});

describe('what the queue does with the agent\'s typed results', () => {
  it('delivered: one attempt, a delivery_start from the agent, then delivered', async () => {
    const { fwd, agent, copyEvents, types } = setup();
    fwd.offer(copy());
    await flush();
    expect(agent.calls).toHaveLength(1);
    expect(agent.calls[0]!.ctx.attempt).toBe(1);
    agent.hooks!.onDeliveryStart(agent.calls[0]!.copy, 42);
    agent.calls[0]!.resolve(delivered(42));
    await flush();
    expect(types()).toEqual(['enqueued', 'attempt', 'delivery_start', 'delivered']);
    expect(copyEvents()[2]).toMatchObject({ dcid: 42, attempt: 1 });
    expect(fwd.counters()).toMatchObject({ delivered: 1, activeRecipients: 0, queuedBytes: 0, softBounced: 0 });
  });

  it.each([
    ['5xx', hard()],
    ['TLS failure', tlsError()],
    ['NXDOMAIN', nxdomain()],
  ])('%s (hard): done after the first attempt, never retried', async (_n, result) => {
    const { fwd, agent, clock, copyEvents } = setup();
    fwd.offer(copy());
    await flush();
    agent.calls[0]!.resolve(result);
    await flush();
    clock.advance(200_000);
    await flush();
    expect(agent.calls).toHaveLength(1);
    expect(copyEvents().at(-1)).toMatchObject({ type: 'hard_bounce', attempt: 1, result });
    expect(fwd.counters()).toMatchObject({ hardBounced: 1, softBounced: 0, activeRecipients: 0 });
  });

  it.each([
    ['4xx', soft()],
    ['connection refused', refused()],
  ])('%s (soft): retried exactly once after exactly retry_delay; a second soft ends it as hard bounced', async (_n, result) => {
    const { fwd, agent, clock, copyEvents, types } = setup();
    fwd.offer(copy());
    await flush();
    const failedAt = clock.now();
    agent.calls[0]!.resolve(result);
    await flush();
    expect(copyEvents().at(-1)).toMatchObject({ type: 'soft_bounce', attempt: 1, retryInMs: 10_000, result });
    expect(fwd.counters()).toMatchObject({ softBounced: 1, activeRecipients: 1 });
    clock.advance(9_999);
    await flush();
    expect(agent.calls).toHaveLength(1);
    clock.advance(1);
    await flush();
    expect(agent.calls).toHaveLength(2);
    expect(agent.calls[1]!.at - failedAt).toBe(10_000);
    expect(agent.calls[1]!.ctx.attempt).toBe(2);
    agent.calls[1]!.resolve(result);
    await flush();
    clock.advance(60_000);
    await flush();
    expect(agent.calls).toHaveLength(2);
    expect(types()).toEqual(['enqueued', 'attempt', 'soft_bounce', 'attempt', 'dropped']);
    expect(copyEvents().at(-1)).toMatchObject({ type: 'dropped', reason: 'retries_spent', attempted: true, last: result });
    // The gateway's view: removed after an attempt is a hard bounce, not a drop.
    expect(fwd.counters()).toMatchObject({ softBounced: 1, hardBounced: 1, dropped: 0, delivered: 0, activeRecipients: 0, queuedBytes: 0 });
    expect(identityHolds(fwd)).toBe(true);
  });

  it('a retry that succeeds ends delivered', async () => {
    const { fwd, agent, clock } = setup();
    fwd.offer(copy());
    await flush();
    agent.calls[0]!.resolve(soft());
    await flush();
    clock.advance(10_000);
    await flush();
    agent.calls[1]!.resolve(delivered());
    await flush();
    expect(fwd.counters()).toMatchObject({ delivered: 1, softBounced: 1, hardBounced: 0, dropped: 0, activeRecipients: 0 });
  });

  it('an agent that rejects (against the contract) still ends the copy once, as a local hard bounce', async () => {
    const clock = new ManualClock();
    const logger = new MemoryLogger();
    const agent = new FakeAgent(clock);
    agent.deliver = () => Promise.reject(new Error('bug'));
    const fwd = new Forwarder(BASE, { logger, clock, agent: () => agent });
    fwd.offer(copy());
    await flush();
    await flush();
    expect(fwd.counters()).toMatchObject({ hardBounced: 1, activeRecipients: 0 });
  });
});

describe('max_queue_age, counted from enqueue', () => {
  it('removes a copy waiting for its retry at exactly 120 s, not at 119.999 s: hard bounced', async () => {
    const { fwd, agent, clock, copyEvents } = setup({ retryDelay: 200_000 });
    fwd.offer(copy());
    await flush();
    clock.advance(5_000);
    agent.calls[0]!.resolve(soft());
    await flush();
    clock.advance(114_999); // 119.999 s since enqueue
    await flush();
    expect(fwd.counters().activeRecipients).toBe(1);
    clock.advance(1);
    await flush();
    expect(copyEvents().at(-1)).toMatchObject({
      type: 'dropped', reason: 'too_old', attempted: true, detail: 'too old (120 s in queue, max_queue_age 120 s)', last: soft(),
    });
    expect(fwd.counters()).toMatchObject({ activeRecipients: 0, hardBounced: 1, dropped: 0, queuedBytes: 0 });
    clock.advance(300_000);
    await flush();
    expect(agent.calls).toHaveLength(1); // the retry never ran
  });

  it('a timer that fires a millisecond early (as Node\'s may, by Date.now()) does not remove the copy before 120 s', async () => {
    /** Fires every timer 1 ms before it is due, as a real event loop sometimes does. */
    class EarlyClock extends ManualClock {
      override setTimer(ms: number, fn: () => void) {
        return super.setTimer(ms > 1 ? ms - 1 : ms, fn);
      }
    }
    const { fwd, agent, clock, copyEvents } = setup({ retryDelay: 200_000 }, new EarlyClock());
    fwd.offer(copy());
    await flush();
    agent.calls[0]!.resolve(soft());
    await flush();
    clock.advance(119_999);
    await flush();
    expect(fwd.counters().activeRecipients).toBe(1);
    clock.advance(1);
    await flush();
    expect(copyEvents().at(-1)).toMatchObject({ type: 'dropped', reason: 'too_old', detail: 'too old (120 s in queue, max_queue_age 120 s)' });
  });

  it('aborts an attempt in flight at the deadline and ignores its late result', async () => {
    const { fwd, agent, clock, types } = setup();
    fwd.offer(copy());
    await flush();
    const signal = agent.calls[0]!.ctx.signal;
    clock.advance(119_999);
    expect(signal.aborted).toBe(false);
    clock.advance(1);
    expect(signal.aborted).toBe(true);
    agent.calls[0]!.resolve(delivered());
    await flush();
    expect(types()).toEqual(['enqueued', 'attempt', 'dropped']);
    expect(fwd.counters()).toMatchObject({ delivered: 0, hardBounced: 1, activeRecipients: 0 });
  });

  it('a copy never attempted before its deadline is dropped, not hard bounced', async () => {
    const { fwd, clock, copyEvents } = setup({ minConnections: 1, maxConnections: 1 });
    fwd.offer(copy());
    fwd.offer(copy()); // waits behind the first, which never answers
    await flush();
    clock.advance(120_000);
    await flush();
    expect(copyEvents().filter((e) => e.type === 'dropped').map((e) => e.type === 'dropped' && e.attempted)).toEqual([true, false]);
    expect(fwd.counters()).toMatchObject({ hardBounced: 1, dropped: 1, activeRecipients: 0 });
  });

  it('keeps the age limit a copy was enqueued with across reconfigure', async () => {
    const { fwd, clock } = setup();
    fwd.offer(copy());
    await flush();
    fwd.reconfigure({ ...BASE, maxQueueAge: 500_000 });
    fwd.offer(copy());
    clock.advance(120_000);
    await flush();
    expect(fwd.counters()).toMatchObject({ hardBounced: 1, activeRecipients: 1 });
  });
});

describe('connections: what the queue asks the agent for', () => {
  it('min_connections as soon as an intake has a copy, more with the backlog, none once it drains', async () => {
    const { fwd, agent } = setup({ queueMaxMessages: 1000 });
    fwd.offer(copy());
    expect(agent.wanted('journal@intake.test')).toBe(3);
    await flush();
    expect(agent.calls).toHaveLength(1);
    for (let i = 0; i < 64; i += 1) fwd.offer(copy());
    expect(agent.wanted('journal@intake.test')).toBe(7); // 65 copies: one connection per 10
    await flush();
    expect(agent.calls).toHaveLength(7); // one delivery per wanted connection
    for (let i = 0; i < 200; i += 1) fwd.offer(copy());
    await flush();
    expect(agent.wanted('journal@intake.test')).toBe(10);
    expect(agent.calls).toHaveLength(10);
    agent.calls[0]!.resolve(delivered());
    await flush();
    expect(agent.calls).toHaveLength(11); // a finished slot is refilled
    for (const call of agent.calls.slice(1)) call.resolve(delivered());
    for (let round = 0; round < 40 && fwd.counters().activeRecipients > 0; round += 1) {
      await flush();
      for (const call of agent.calls) call.resolve(delivered());
      await flush();
    }
    expect(fwd.counters()).toMatchObject({ delivered: 265, activeRecipients: 0 });
    expect(agent.demands.at(-1)).toEqual(['journal@intake.test', 0]);
  });

  it('keeps each intake apart', async () => {
    const { fwd, agent } = setup();
    fwd.offer(copy(10, 'a.test'));
    fwd.offer(copy(10, 'b.test'));
    await flush();
    expect(agent.wanted('journal@a.test')).toBe(3);
    expect(agent.wanted('journal@b.test')).toBe(3);
    agent.calls.find((c) => c.copy.intakeAddress === 'journal@a.test')!.resolve(delivered());
    await flush();
    expect(agent.wanted('journal@a.test')).toBe(0);
    expect(agent.wanted('journal@b.test')).toBe(3);
  });

  it('a retry goes to the front of its intake\'s line', async () => {
    const { fwd, agent, clock } = setup({ minConnections: 1, maxConnections: 1 });
    const first = copy();
    fwd.offer(first);
    await flush();
    agent.calls[0]!.resolve(soft());
    fwd.offer(copy());
    await flush();
    expect(agent.calls).toHaveLength(2); // the second copy took the free connection
    clock.advance(10_000);
    fwd.offer(copy());
    agent.calls[1]!.resolve(delivered());
    await flush();
    expect(agent.calls[2]!.copy.id).toBe(first.id);
  });
});

describe('drain and close', () => {
  it('refuses new copies (dropped, shutting down) and resolves when the queue empties', async () => {
    const { fwd, agent, copyEvents } = setup();
    fwd.offer(copy());
    await flush();
    let done = false;
    const p = fwd.drain(30_000).then(() => { done = true; });
    const late = copy();
    expect(fwd.offer(late)).toBe(false);
    expect(copyEvents().at(-1)).toMatchObject({ type: 'dropped', reason: 'shutting_down', attempted: false, copy: { copyId: late.id } });
    await flush();
    expect(done).toBe(false);
    agent.calls[0]!.resolve(delivered());
    await p;
    expect(fwd.counters()).toMatchObject({ delivered: 1, dropped: 1, activeRecipients: 0 });
  });

  it('ends what is left when the grace time is over: attempted ones hard bounced, the others dropped', async () => {
    const { fwd, agent, clock } = setup({ retryDelay: 60_000, minConnections: 1, maxConnections: 1 });
    fwd.offer(copy());
    fwd.offer(copy());
    await flush();
    agent.calls[0]!.resolve(soft());
    await flush();
    let done = false;
    const p = fwd.drain(5_000).then(() => { done = true; });
    clock.advance(4_999);
    await flush();
    expect(done).toBe(false);
    clock.advance(1);
    await p;
    expect(agent.calls[1]!.ctx.signal.aborted).toBe(true);
    // The first waited for its retry, the second was in flight: both were attempted.
    expect(fwd.counters()).toMatchObject({ hardBounced: 2, dropped: 0, activeRecipients: 0, queuedBytes: 0 });
  });

  it('resolves at once on an empty queue', async () => {
    const { fwd } = setup();
    await fwd.drain(10_000);
  });

  it('close() ends leftovers so every copy ends exactly once', async () => {
    const { fwd, copyEvents } = setup();
    fwd.offer(copy());
    fwd.offer(copy());
    await flush();
    await fwd.close();
    expect(copyEvents().filter((e) => ['delivered', 'hard_bounce', 'dropped'].includes(e.type))).toHaveLength(2);
    expect(fwd.offer(copy())).toBe(false);
    expect(identityHolds(fwd)).toBe(true);
  });
});

describe('counters and events', () => {
  it('keeps each domain apart and sums to the queue totals', async () => {
    const { fwd, agent } = setup();
    fwd.offer(copy(10, 'a.test'));
    fwd.offer(copy(20, 'b.test'));
    fwd.offer(copy(30, 'B.TEST'));
    await flush();
    agent.calls[0]!.resolve(delivered());
    agent.calls[1]!.resolve(hard());
    await flush();
    const by = fwd.countersByDomain();
    expect(by.get('a.test')).toMatchObject({ enqueued: 1, delivered: 1, activeRecipients: 0 });
    expect(by.get('b.test')).toMatchObject({ enqueued: 2, hardBounced: 1, activeRecipients: 1, queuedBytes: 30 });
    expect(fwd.counters()).toMatchObject({ enqueued: 3, delivered: 1, hardBounced: 1, activeRecipients: 1, queuedBytes: 30, connectionsOut: 0 });
  });

  it('every copy ends in exactly one final event and the identity holds at every step', async () => {
    const { fwd, agent, clock, copyEvents } = setup({ queueMaxMessages: 40, retryDelay: 1000 });
    const outcomes = [() => delivered(), () => soft(), () => hard()];
    for (let i = 0; i < 50; i += 1) fwd.offer(copy());
    const answered = new Set<number>();
    for (let round = 0; round < 30; round += 1) {
      await flush();
      agent.calls.forEach((call, i) => {
        if (answered.has(i)) return;
        answered.add(i);
        call.resolve(outcomes[i % 3]!());
      });
      await flush();
      expect(identityHolds(fwd)).toBe(true);
      clock.advance(1000);
    }
    const finals = copyEvents().filter((e) => ['delivered', 'hard_bounce', 'dropped'].includes(e.type));
    expect(new Set(finals.map((e) => e.copy.mid)).size).toBe(50);
    expect(finals).toHaveLength(50);
    const c = fwd.counters();
    expect(c.activeRecipients).toBe(0);
    expect(c.enqueued).toBe(50);
    expect(c.dropped).toBe(10); // the ten over queue_max_messages, never attempted
  });

  it('an observer that throws is logged and does not stop the copy', async () => {
    const clock = new ManualClock();
    const logger = new MemoryLogger();
    const agent = new FakeAgent(clock);
    const fwd = new Forwarder(BASE, { logger, clock, agent: () => agent, onEvent: () => { throw new Error('observer bug'); } });
    fwd.offer(copy());
    await flush();
    agent.calls[0]!.resolve(delivered());
    await flush();
    expect(fwd.counters()).toMatchObject({ delivered: 1 });
    expect(logger.matching(/observer of the forwarder's enqueued event failed: .*observer bug/)).toHaveLength(1);
  });
});
