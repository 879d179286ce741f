/**
 * The bounded forwarder queue `the.tdc.queue` — the scheduler that decides *when*: bounds by count
 * and bytes, the age limit counted from enqueue, one retry after retryDelay, how many deliveries
 * run at once, counters, events and the outcome log lines. *How* a copy is delivered is the
 * injected DeliverFn; *what a failure means* is classify.ts. Every timer is on the injected Clock.
 * Imports util and this folder only.
 */
import type { Clock, TimerHandle } from '../util/clock';
import type { Logger } from '../util/logger';
import { describeError } from '../util/errors';
import { classifyFailure, type Classification } from './classify';
import { Fifo, type FifoNode } from './fifo';
import {
  MAX_ATTEMPTS, QUEUE_NAME, dcidOf, domainOf, journalBytes, zeroCounters,
  type CopyEvent, type CopyEventKind, type CopyIdentity, type DeliverFn, type ForwarderCounters, type ForwarderOptions, type JournalCopy,
} from './types';

export type QueueOptions = Pick<ForwarderOptions,
  'maxQueueAge' | 'retryDelay' | 'queueMaxMessages' | 'queueMaxBytes' | 'minConnections' | 'maxConnections' | 'messagesPerConnection'>;

export interface CopyQueueDeps {
  logger: Logger;
  clock: Clock;
  deliver: DeliverFn;
  onEvent?: (e: CopyEvent) => void;
}

type EntryState = 'waiting' | 'delivering' | 'retry_wait' | 'done';

interface Entry {
  copy: JournalCopy;
  domain: string;
  bytes: number;
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
}

/**
 * How many deliveries may run at once: enough connections for the backlog at
 * messagesPerConnection each, at least minConnections, at most maxConnections.
 */
export function dispatchTarget(active: number, o: Pick<QueueOptions, 'minConnections' | 'maxConnections' | 'messagesPerConnection'>): number {
  const needed = Math.ceil(active / Math.max(1, o.messagesPerConnection));
  return Math.max(1, Math.min(o.maxConnections, Math.max(o.minConnections, needed)));
}

/** '10 s', '0.25 s'. */
export function seconds(ms: number): string {
  return `${Number((ms / 1000).toFixed(3))} s`;
}

function messageIdText(messageId: string): string {
  const id = messageId.trim();
  if (id === '') return 'no Message-ID';
  return `Message-ID ${id.startsWith('<') ? id : `<${id}>`}`;
}

function failureText(c: Classification): string {
  return `${c.status} ${c.text} ('${c.detail}')`;
}

export class CopyQueue {
  #o: QueueOptions;
  readonly #deps: CopyQueueDeps;
  readonly #waiting = new Fifo<Entry>();
  readonly #entries = new Set<Entry>();
  #inFlight = 0;
  #kickPending = false;
  #closed = false;
  #drainWaiters: (() => void)[] = [];
  #drainPromise: Promise<void> | undefined;
  readonly #total = zeroCounters();
  readonly #byDomain = new Map<string, ForwarderCounters>();

  constructor(options: QueueOptions, deps: CopyQueueDeps) {
    this.#o = { ...options };
    this.#deps = deps;
  }

  /** Copies waiting for a delivery slot (not in flight, not waiting for their retry). */
  get waiting(): number {
    return this.#waiting.size;
  }

  get inFlight(): number {
    return this.#inFlight;
  }

  get size(): number {
    return this.#entries.size;
  }

  /** New limits apply to new copies and the next dispatch; queued copies keep their age limit. */
  reconfigure(options: QueueOptions): void {
    this.#o = { ...options };
    this.#kick();
  }

  /**
   * Why a copy of at least `minBytes` would be refused right now, or undefined when it may fit.
   * Lets the caller skip building a journal that could only be dropped (see `refuse`).
   */
  refusal(minBytes: number, what = `this copy ${minBytes} bytes`): string | undefined {
    if (this.#closed || this.#drainPromise) return 'shutting down';
    const count = this.#entries.size;
    const queued = this.#total.queuedBytes;
    if (count + 1 > this.#o.queueMaxMessages || queued + minBytes > this.#o.queueMaxBytes) {
      return `queue full (${count}/${this.#o.queueMaxMessages} messages, ${queued}/${this.#o.queueMaxBytes} bytes, ${what})`;
    }
    return undefined;
  }

  /** Count and log a copy refused before it was built, exactly as `offer` would have. */
  refuse(copy: CopyIdentity, reason: string): void {
    this.#reject(copy, domainOf(copy.intakeAddress), reason);
  }

  /** Instant: enqueue or drop. False = dropped (queue full, shutting down), logged and counted. */
  offer(copy: JournalCopy): boolean {
    const domain = domainOf(copy.intakeAddress);
    const bytes = journalBytes(copy.raw);
    const refused = this.refusal(bytes);
    if (refused !== undefined) {
      this.#reject(copy, domain, refused);
      return false;
    }
    const now = this.#deps.clock.now();
    const entry: Entry = {
      copy, domain, bytes, enqueuedAt: now, maxAge: this.#o.maxQueueAge, attempts: 0, state: 'waiting',
      node: undefined, deadline: undefined, retryTimer: undefined, controller: undefined,
    };
    this.#entries.add(entry);
    entry.node = this.#waiting.push(entry);
    this.#bump(domain, 'enqueued', 1);
    this.#bump(domain, 'activeRecipients', 1);
    this.#bump(domain, 'queuedBytes', bytes);
    this.#deps.logger.info(`MID ${copy.id} queued for delivery to ${copy.intakeAddress} (${messageIdText(copy.messageId)}, ${bytes} bytes)`);
    this.#emit('enqueued', copy, undefined, `queued for ${copy.intakeAddress} (${bytes} bytes)`);
    entry.deadline = this.#deps.clock.setTimer(entry.maxAge, () => this.#expire(entry));
    this.#kick();
    return true;
  }

  counters(): ForwarderCounters {
    return { ...this.#total };
  }

  countersByDomain(): Map<string, ForwarderCounters> {
    const out = new Map<string, ForwarderCounters>();
    for (const [d, c] of this.#byDomain) out.set(d, { ...c });
    return out;
  }

  /** Stop taking copies; resolve when the queue is empty or after graceMs, dropping what is left. */
  drain(graceMs: number): Promise<void> {
    if (this.#drainPromise) return this.#drainPromise;
    this.#drainPromise = new Promise<void>((resolve) => {
      if (this.#entries.size === 0) {
        resolve();
        return;
      }
      const timer = this.#deps.clock.setTimer(graceMs, () => {
        this.#dropAll('shutting down');
      });
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
    this.#dropAll('shutting down');
  }

  #dropAll(reason: string): void {
    for (const entry of [...this.#entries]) {
      this.#finish(entry, 'dropped', reason, undefined);
    }
  }

  #reject(copy: CopyIdentity, domain: string, reason: string): void {
    // Counted as offered to the queue and dropped at once, so that
    // enqueued = delivered + hardBounced + dropped + still queued holds exactly.
    this.#bump(domain, 'enqueued', 1);
    this.#bump(domain, 'dropped', 1);
    this.#deps.logger.warn(`MID ${copy.id} dropped from ${QUEUE_NAME}: ${reason}`);
    this.#emit('dropped', copy, undefined, reason);
  }

  #kick(): void {
    if (this.#kickPending) return;
    this.#kickPending = true;
    queueMicrotask(() => {
      this.#kickPending = false;
      this.#dispatch();
    });
  }

  #dispatch(): void {
    for (;;) {
      const target = dispatchTarget(this.#waiting.size + this.#inFlight, this.#o);
      if (this.#inFlight >= target) return;
      const entry = this.#waiting.shift();
      if (!entry) return;
      entry.node = undefined;
      this.#start(entry);
    }
  }

  #start(entry: Entry): void {
    const controller = new AbortController();
    entry.controller = controller;
    entry.state = 'delivering';
    entry.attempts += 1;
    this.#inFlight += 1;
    const attempt = entry.attempts;
    this.#emit('attempt', entry.copy, undefined, `attempt ${attempt} of ${MAX_ATTEMPTS}`);
    Promise.resolve()
      .then(() => this.#deps.deliver(entry.copy, { attempt, signal: controller.signal }))
      .then(
        (result) => {
          if (entry.controller !== controller) return;
          this.#settle(entry);
          const reply = result.response.trim();
          const dcid = result.dcid;
          this.#finish(entry, 'delivered', reply, dcid);
        },
        (err: unknown) => {
          if (entry.controller !== controller) return;
          this.#settle(entry);
          this.#failed(entry, err);
        },
      )
      .catch((err: unknown) => {
        // Only a bug of ours (a throwing logger or onEvent) gets here; the copy must still end.
        this.#deps.logger.error(`MID ${entry.copy.id}: internal error after attempt ${attempt}: ${describeError(err)}`);
        if (entry.state !== 'done') this.#finish(entry, 'dropped', `internal error: ${describeError(err)}`, undefined);
      });
  }

  /** The attempt in flight has returned: free its slot. */
  #settle(entry: Entry): void {
    entry.controller = undefined;
    this.#inFlight -= 1;
    this.#kick();
  }

  #failed(entry: Entry, err: unknown): void {
    const c = classifyFailure(err);
    const dcid = dcidOf(err);
    const dcidText = dcid === undefined ? '' : ` DCID ${dcid}`;
    if (!c.retry) {
      this.#finish(entry, 'hard_bounce', failureText(c), dcid);
      return;
    }
    if (entry.attempts >= MAX_ATTEMPTS) {
      this.#finish(entry, 'dropped', `retries spent (last: ${failureText(c)})`, dcid);
      return;
    }
    const delay = this.#o.retryDelay;
    this.#bump(entry.domain, 'softBounced', 1);
    entry.state = 'retry_wait';
    const detail = `${failureText(c)}; retry in ${seconds(delay)} (attempt ${entry.attempts} of ${MAX_ATTEMPTS})`;
    this.#deps.logger.warn(`Soft bounce${dcidText} MID ${entry.copy.id} to RID [0] - ${detail}`);
    this.#emit('retry', entry.copy, dcid, detail);
    entry.retryTimer = this.#deps.clock.setTimer(delay, () => {
      entry.retryTimer = undefined;
      if (entry.state !== 'retry_wait') return;
      entry.state = 'waiting';
      // The retry goes first: it is older than anything that arrived since.
      entry.node = this.#waiting.unshift(entry);
      this.#kick();
    });
  }

  #expire(entry: Entry): void {
    entry.deadline = undefined;
    if (entry.state === 'done') return;
    const age = this.#deps.clock.now() - entry.enqueuedAt;
    this.#finish(entry, 'dropped', `too old (${seconds(age)} in queue, max_queue_age ${seconds(entry.maxAge)})`, undefined);
  }

  /** The one exit of a copy: delivered, hard bounced or dropped; exactly once. */
  #finish(entry: Entry, kind: 'delivered' | 'hard_bounce' | 'dropped', detail: string, dcid: number | undefined): void {
    if (entry.state === 'done') return;
    if (entry.state === 'delivering' && entry.controller) {
      // Aborted at the deadline or on shutdown: the attempt's later result is ignored.
      const c = entry.controller;
      entry.controller = undefined;
      this.#inFlight -= 1;
      c.abort(new Error(`MID ${entry.copy.id}: ${detail}`));
      this.#kick();
    }
    entry.state = 'done';
    if (entry.node) this.#waiting.remove(entry.node);
    entry.node = undefined;
    entry.deadline?.cancel();
    entry.retryTimer?.cancel();
    this.#entries.delete(entry);
    this.#bump(entry.domain, 'activeRecipients', -1);
    this.#bump(entry.domain, 'queuedBytes', -entry.bytes);
    const id = entry.copy.id;
    const d = dcid === undefined ? '' : ` DCID ${dcid}`;
    if (kind === 'delivered') {
      this.#bump(entry.domain, 'delivered', 1);
      this.#deps.logger.info(`Message done${d} MID ${id} to RID [0] [('${detail}')]`);
    } else if (kind === 'hard_bounce') {
      this.#bump(entry.domain, 'hardBounced', 1);
      this.#deps.logger.warn(`Hard bounce${d} MID ${id} to RID [0] - ${detail}`);
    } else {
      this.#bump(entry.domain, 'dropped', 1);
      this.#deps.logger.warn(`MID ${id} dropped from ${QUEUE_NAME}: ${detail}`);
    }
    this.#emit(kind, entry.copy, dcid, detail);
    if (this.#entries.size === 0 && this.#drainWaiters.length > 0) {
      const waiters = this.#drainWaiters;
      this.#drainWaiters = [];
      for (const w of waiters) w();
    }
  }

  #bump(domain: string, field: keyof ForwarderCounters, delta: number): void {
    this.#total[field] += delta;
    let d = this.#byDomain.get(domain);
    if (!d) {
      d = zeroCounters();
      this.#byDomain.set(domain, d);
    }
    d[field] += delta;
  }

  #emit(kind: CopyEventKind, copy: CopyIdentity, dcid: number | undefined, detail: string): void {
    const onEvent = this.#deps.onEvent;
    if (!onEvent) return;
    const e: CopyEvent = { kind, copyId: copy.id, queueId: copy.queueId, at: this.#deps.clock.now(), detail };
    if (dcid !== undefined) e.dcid = dcid;
    try {
      onEvent(e);
    } catch (err) {
      this.#deps.logger.error(`MID ${copy.id}: onEvent failed: ${describeError(err)}`);
    }
  }
}
