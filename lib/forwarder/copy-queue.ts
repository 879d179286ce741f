/**
 * The bounded queue `the.tdc.queue`, which decides *when*: bounds, numeric MIDs, max_queue_age from enqueue,
 * and only "soft → one retry, hard → done, too old → done" on the agent's typed result. Every fact leaves
 * as a CopyEvent (it neither logs nor counts); timers run on the injected Clock. Imports util and this folder.
 */
import type { Clock, TimerHandle } from '../util/clock';
import type { Logger } from '../util/logger';
import { describeError } from '../util/errors';
import { connectionsWanted } from './concurrency';
import type { DeliveryAgent, DeliveryResult, QueuedCopy } from './delivery-agent';
import type { CopyEvent, CopyFacts, DropReason } from './events';
import { Fifo, type FifoNode } from './fifo';
import { MAX_ATTEMPTS, copyFacts, journalBytes, type CopyIdentity, type ForwarderOptions, type JournalCopy } from './types';

export type QueueOptions = Pick<ForwarderOptions,
  'maxQueueAge' | 'retryDelay' | 'queueMaxMessages' | 'queueMaxBytes' | 'minConnections' | 'maxConnections'>;

export interface CopyQueueDeps {
  clock: Clock;
  agent: Pick<DeliveryAgent, 'deliver' | 'demand'>;
  /** The next MID (ids never repeat, across restarts too: id-sequence.ts). */
  nextMid: () => number;
  /** Every copy event, in order. */
  emit: (e: CopyEvent) => void;
  /** Only for our own bugs (a throwing agent or observer); copy lines are the observers' job. */
  logger: Logger;
}

type EntryState = 'waiting' | 'delivering' | 'retry_wait' | 'done';

interface Entry {
  copy: QueuedCopy;
  facts: CopyFacts;
  line: IntakeLine;
  enqueuedAt: number;
  /** maxQueueAge as it was when the copy was enqueued. */
  maxAge: number;
  attempts: number;
  state: EntryState;
  node: FifoNode<Entry> | undefined;
  deadline: TimerHandle | undefined;
  retryTimer: TimerHandle | undefined;
  /** The attempt in flight; a result whose controller is not this one is stale and ignored. */
  controller: AbortController | undefined;
  last: DeliveryResult | undefined;
}

/** One intake address's part of the queue: the gateway's per-destination queue. */
interface IntakeLine {
  intake: string;
  waiting: Fifo<Entry>;
  /** Copies of this intake in the queue, in every state. */
  entries: number;
  inFlight: number;
  /** What the agent was last told (connections wanted). */
  demanded: number;
}

/** '10 s', '0.25 s'. */
function seconds(ms: number): string {
  return `${Number((ms / 1000).toFixed(3))} s`;
}

export class CopyQueue {
  #o: QueueOptions;
  readonly #deps: CopyQueueDeps;
  readonly #entries = new Map<number, Entry>();
  readonly #lines = new Map<string, IntakeLine>();
  #queuedBytes = 0;
  #kickPending = false;
  #closed = false;
  #drainWaiters: (() => void)[] = [];
  #drainPromise: Promise<void> | undefined;

  constructor(options: QueueOptions, deps: CopyQueueDeps) {
    this.#o = { ...options };
    this.#deps = deps;
  }

  /** Copies in the queue, in every state. */
  get size(): number {
    return this.#entries.size;
  }

  /** Deliveries running now, all intakes. */
  get inFlight(): number {
    let n = 0;
    for (const l of this.#lines.values()) n += l.inFlight;
    return n;
  }

  /** New limits apply to new copies and the next dispatch; queued copies keep their age limit. */
  reconfigure(options: QueueOptions): void {
    this.#o = { ...options };
    for (const line of this.#lines.values()) this.#tellDemand(line);
    this.#kick();
  }

  /**
   * Why a copy of at least `minBytes` would be refused right now, or undefined when it may fit.
   * Lets the caller skip building a journal that could only be dropped (see `refuse`).
   */
  refusal(minBytes: number, what = `this copy ${minBytes} bytes`): { reason: DropReason; detail: string } | undefined {
    if (this.#closed || this.#drainPromise) return { reason: 'shutting_down', detail: 'shutting down' };
    const count = this.#entries.size;
    const queued = this.#queuedBytes;
    if (count + 1 > this.#o.queueMaxMessages || queued + minBytes > this.#o.queueMaxBytes) {
      return {
        reason: 'queue_full',
        detail: `queue full (${count}/${this.#o.queueMaxMessages} messages, ${queued}/${this.#o.queueMaxBytes} bytes, ${what})`,
      };
    }
    return undefined;
  }

  /** A copy refused before it was built (or as offered): it gets a MID and one `dropped` event. */
  refuse(copy: CopyIdentity, bytes: number, refused: { reason: DropReason; detail: string }): void {
    const facts = copyFacts(copy, this.#deps.nextMid(), bytes);
    this.#emit({ type: 'dropped', at: this.#deps.clock.now(), copy: facts, reason: refused.reason, attempted: false, detail: refused.detail });
  }

  /** Instant: enqueue, or drop with an event. Returns the MID when queued, undefined when dropped. */
  offer(copy: JournalCopy): number | undefined {
    const bytes = journalBytes(copy.raw);
    const refused = this.refusal(bytes);
    if (refused !== undefined) {
      this.refuse(copy, bytes, refused);
      return undefined;
    }
    const mid = this.#deps.nextMid();
    const facts = copyFacts(copy, mid, bytes);
    const line = this.#line(copy.intakeAddress);
    const entry: Entry = {
      copy: { ...copy, mid }, facts, line, enqueuedAt: this.#deps.clock.now(), maxAge: this.#o.maxQueueAge,
      attempts: 0, state: 'waiting', node: undefined, deadline: undefined, retryTimer: undefined, controller: undefined, last: undefined,
    };
    this.#entries.set(mid, entry);
    this.#queuedBytes += bytes;
    line.entries += 1;
    entry.node = line.waiting.push(entry);
    this.#emit({ type: 'enqueued', at: entry.enqueuedAt, copy: facts });
    entry.deadline = this.#deps.clock.setTimer(entry.maxAge, () => this.#expire(entry));
    this.#tellDemand(line);
    this.#kick();
    return mid;
  }

  /** The agent says which connection took a copy (its `onDeliveryStart`). Stale calls are ignored. */
  deliveryStart(mid: number, dcid: number): void {
    const entry = this.#entries.get(mid);
    if (!entry || entry.state !== 'delivering') return;
    this.#emit({ type: 'delivery_start', at: this.#deps.clock.now(), copy: entry.facts, dcid, attempt: entry.attempts });
  }

  /** Stop taking copies; resolve when the queue is empty or after graceMs, dropping what is left. */
  drain(graceMs: number): Promise<void> {
    if (this.#drainPromise) return this.#drainPromise;
    this.#drainPromise = new Promise<void>((resolve) => {
      if (this.#entries.size === 0) {
        resolve();
        return;
      }
      const timer = this.#deps.clock.setTimer(graceMs, () => this.#dropAll());
      this.#drainWaiters.push(() => {
        timer.cancel();
        resolve();
      });
    });
    return this.#drainPromise;
  }

  /** Refuse new copies and drop whatever is still queued (aborting attempts in flight). */
  close(): void {
    this.#closed = true;
    this.#dropAll();
  }

  #line(intake: string): IntakeLine {
    let line = this.#lines.get(intake);
    if (!line) {
      line = { intake, waiting: new Fifo<Entry>(), entries: 0, inFlight: 0, demanded: 0 };
      this.#lines.set(intake, line);
    }
    return line;
  }

  /** Tell the agent the connections this intake wants now, when that changed. */
  #tellDemand(line: IntakeLine): void {
    const wanted = connectionsWanted(line.entries, this.#o);
    if (wanted !== line.demanded) {
      line.demanded = wanted;
      try {
        this.#deps.agent.demand(line.intake, wanted);
      } catch (err) {
        this.#deps.logger.error(`delivery agent: demand for ${line.intake} failed: ${describeError(err)}`);
      }
    }
    if (line.entries === 0 && line.inFlight === 0) this.#lines.delete(line.intake);
  }

  #dropAll(): void {
    for (const entry of [...this.#entries.values()]) {
      this.#drop(entry, 'shutting_down', 'shutting down');
    }
  }

  #kick(): void {
    if (this.#kickPending) return;
    this.#kickPending = true;
    queueMicrotask(() => {
      this.#kickPending = false;
      this.#dispatch();
    });
  }

  /** One delivery in flight per wanted connection of each intake. */
  #dispatch(): void {
    for (const line of [...this.#lines.values()]) {
      while (line.inFlight < line.demanded) {
        const entry = line.waiting.shift();
        if (!entry) break;
        entry.node = undefined;
        this.#start(entry);
      }
    }
  }

  #start(entry: Entry): void {
    const controller = new AbortController();
    entry.controller = controller;
    entry.state = 'delivering';
    entry.attempts += 1;
    entry.line.inFlight += 1;
    const attempt = entry.attempts;
    this.#emit({ type: 'attempt', at: this.#deps.clock.now(), copy: entry.facts, attempt });
    Promise.resolve()
      .then(() => this.#deps.agent.deliver(entry.copy, { attempt, signal: controller.signal }))
      .catch((err: unknown): DeliveryResult => ({
        // The contract says deliver never rejects; if an agent does, the copy still ends once.
        outcome: 'hard', dsn: '5.3.0', reply: '', detail: `internal error: ${describeError(err)}`, kind: 'local', phase: 'local',
      }))
      .then((result) => {
        if (entry.controller !== controller) return;
        this.#settle(entry);
        this.#result(entry, result);
      })
      .catch((err: unknown) => {
        // Only a bug of ours (a throwing observer) gets here; the copy must still end.
        this.#deps.logger.error(`MID ${entry.facts.mid}: internal error after attempt ${attempt}: ${describeError(err)}`);
        if (entry.state !== 'done') this.#drop(entry, 'retries_spent', `internal error: ${describeError(err)}`);
      });
  }

  /** The attempt in flight has returned: free its slot. */
  #settle(entry: Entry): void {
    entry.controller = undefined;
    entry.line.inFlight -= 1;
    this.#kick();
  }

  #result(entry: Entry, result: DeliveryResult): void {
    entry.last = result;
    const at = this.#deps.clock.now();
    const attempt = entry.attempts;
    if (result.outcome === 'delivered') {
      this.#leave(entry, { type: 'delivered', at, copy: entry.facts, attempt, result });
      return;
    }
    if (result.outcome === 'hard') {
      this.#leave(entry, { type: 'hard_bounce', at, copy: entry.facts, attempt, result });
      return;
    }
    if (attempt >= MAX_ATTEMPTS) {
      this.#drop(entry, 'retries_spent', `retries spent (${attempt} attempts)`);
      return;
    }
    const delay = this.#o.retryDelay;
    entry.state = 'retry_wait';
    this.#emit({ type: 'soft_bounce', at, copy: entry.facts, attempt, result, retryInMs: delay });
    entry.retryTimer = this.#deps.clock.setTimer(delay, () => {
      entry.retryTimer = undefined;
      if (entry.state !== 'retry_wait') return;
      entry.state = 'waiting';
      // The retry goes first: it is older than anything that arrived since.
      entry.node = entry.line.waiting.unshift(entry);
      this.#kick();
    });
  }

  #expire(entry: Entry): void {
    entry.deadline = undefined;
    if (entry.state === 'done') return;
    const age = this.#deps.clock.now() - entry.enqueuedAt;
    if (age < entry.maxAge) {
      // Node's timers may fire a millisecond early by Date.now(): out at max_queue_age, never before.
      entry.deadline = this.#deps.clock.setTimer(Math.max(1, entry.maxAge - age), () => this.#expire(entry));
      return;
    }
    this.#drop(entry, 'too_old', `too old (${seconds(age)} in queue, max_queue_age ${seconds(entry.maxAge)})`);
  }

  #drop(entry: Entry, reason: DropReason, detail: string): void {
    const e: CopyEvent = { type: 'dropped', at: this.#deps.clock.now(), copy: entry.facts, reason, attempted: entry.attempts > 0, detail };
    if (entry.last) e.last = entry.last;
    this.#leave(entry, e);
  }

  /** The one exit of a copy: delivered, hard bounced or dropped; exactly once. */
  #leave(entry: Entry, e: CopyEvent): void {
    if (entry.state === 'done') return;
    if (entry.state === 'delivering' && entry.controller) {
      // Aborted at the deadline or on shutdown: the attempt's later result is ignored.
      const c = entry.controller;
      entry.controller = undefined;
      entry.line.inFlight -= 1;
      c.abort(new Error(`MID ${entry.facts.mid}: ${e.type === 'dropped' ? e.detail : e.type}`));
    }
    entry.state = 'done';
    if (entry.node) entry.line.waiting.remove(entry.node);
    entry.node = undefined;
    entry.deadline?.cancel();
    entry.retryTimer?.cancel();
    this.#entries.delete(entry.facts.mid);
    this.#queuedBytes -= entry.facts.bytes;
    entry.line.entries -= 1;
    this.#emit(e);
    this.#tellDemand(entry.line);
    this.#kick();
    if (this.#entries.size === 0 && this.#drainWaiters.length > 0) {
      const waiters = this.#drainWaiters;
      this.#drainWaiters = [];
      for (const w of waiters) w();
    }
  }

  #emit(e: CopyEvent): void {
    try {
      this.#deps.emit(e);
    } catch (err) {
      this.#deps.logger.error(`MID ${e.copy.mid}: an observer of ${e.type} failed: ${describeError(err)}`);
    }
  }
}
