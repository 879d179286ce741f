/**
 * Message tracking: the life of every journal copy over a bounded recent history (oldest evicted),
 * fed with the forwarder's copy events. Lookup by copy id, by MTA queue id or by Message-ID.
 * Imports only the *types* of the forwarder's contract.
 */
import type { CopyEvent } from '../forwarder';

export type CopyEventKind = CopyEvent['kind'];
export type TrackedEvent = CopyEvent;

/** What the app knows when it offers a copy: the forwarder's `JournalCopy` without the bytes will do. */
export interface TrackedCopy {
  id: string;
  queueId: string;
  /** The original message's Message-ID header value, '' when it had none. */
  messageId: string;
  intakeAddress?: string;
}

/** Where a copy stands. The last three are final. */
export type CopyState = 'queued' | 'delivering' | 'retrying' | 'delivered' | 'hard_bounce' | 'dropped';

export const FINAL_STATES: readonly CopyState[] = ['delivered', 'hard_bounce', 'dropped'];

export interface CopyHistoryEntry {
  kind: CopyEventKind;
  at: number;
  dcid?: number;
  detail: string;
}

export interface CopyRecord {
  copyId: string;
  queueId: string;
  messageId: string;
  intakeAddress: string;
  state: CopyState;
  final: boolean;
  /** Events in the order they happened. */
  events: CopyHistoryEntry[];
  /** Middle events left out because one copy had more than `maxEventsPerCopy`. */
  omittedEvents: number;
}

export type TrackMatch = 'copy' | 'queue' | 'message-id';

export interface TrackLookup {
  matchedBy: TrackMatch;
  records: CopyRecord[];
}

export interface TrackerOptions {
  /** Copies remembered; the oldest is forgotten first. @default 10000 */
  capacity?: number;
  /** Events kept per copy (the first and the latest). @default 100 */
  maxEventsPerCopy?: number;
}

const STATE_AFTER: Record<CopyEventKind, CopyState> = {
  enqueued: 'queued',
  attempt: 'delivering',
  retry: 'retrying',
  delivered: 'delivered',
  hard_bounce: 'hard_bounce',
  dropped: 'dropped',
};

function positiveInteger(name: string, value: number | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  if (!Number.isInteger(value) || value < 1) throw new RangeError(`${name}: expected an integer >= 1, got ${String(value)}`);
  return value;
}

/** A Message-ID as looked up: surrounding whitespace and angle brackets do not matter. */
export function messageIdKey(messageId: string): string {
  const s = messageId.trim();
  return s.startsWith('<') && s.endsWith('>') ? s.slice(1, -1).trim() : s;
}

export class CopyTracker {
  readonly capacity: number;
  readonly maxEventsPerCopy: number;
  /** Insertion order is age order: the first key is the oldest copy. */
  readonly #records = new Map<string, CopyRecord>();
  readonly #byQueue = new Map<string, Set<string>>();
  readonly #byMessageId = new Map<string, Set<string>>();

  constructor(options: TrackerOptions = {}) {
    this.capacity = positiveInteger('capacity', options.capacity, 10_000);
    this.maxEventsPerCopy = positiveInteger('maxEventsPerCopy', options.maxEventsPerCopy, 100);
    if (this.maxEventsPerCopy < 2) throw new RangeError(`maxEventsPerCopy: expected an integer >= 2, got ${this.maxEventsPerCopy}`);
  }

  /** Copies remembered now. */
  get size(): number {
    return this.#records.size;
  }

  /**
   * The copy as the app offers it (call just before `forwarder.offer`): this is where the original
   * Message-ID and the intake address come from. Events may also arrive first; both orders work.
   */
  noteCopy(copy: TrackedCopy): void {
    const rec = this.#ensure(copy.id, copy.queueId);
    if (copy.intakeAddress !== undefined && rec.intakeAddress === '') rec.intakeAddress = copy.intakeAddress;
    if (copy.messageId !== '' && rec.messageId === '') {
      rec.messageId = copy.messageId;
      const key = messageIdKey(copy.messageId);
      if (key !== '') addTo(this.#byMessageId, key, rec.copyId);
    }
  }

  /** One event of a copy's life (the forwarder's `onEvent`). */
  record(event: TrackedEvent): void {
    const rec = this.#ensure(event.copyId, event.queueId);
    const entry: CopyHistoryEntry = { kind: event.kind, at: event.at, detail: event.detail };
    if (event.dcid !== undefined) entry.dcid = event.dcid;
    if (rec.events.length >= this.maxEventsPerCopy) {
      // Keep the first event (when it was queued) and the most recent ones.
      rec.events.splice(1, 1);
      rec.omittedEvents += 1;
    }
    rec.events.push(entry);
    // A final state stays final: a late event (e.g. a stray retry) must not reopen it.
    if (!rec.final) {
      rec.state = STATE_AFTER[event.kind];
      rec.final = FINAL_STATES.includes(rec.state);
    }
  }

  byCopyId(copyId: string): CopyRecord | undefined {
    const rec = this.#records.get(copyId);
    return rec && cloneRecord(rec);
  }

  /** The intake address of a copy, '' when unknown (cheap: no clone). */
  intakeOf(copyId: string): string {
    return this.#records.get(copyId)?.intakeAddress ?? '';
  }

  /** The `n` copies seen last, newest first. */
  recent(n: number): CopyRecord[] {
    const out: CopyRecord[] = [];
    const all = [...this.#records.values()];
    for (let i = all.length - 1; i >= 0 && out.length < n; i--) out.push(cloneRecord(all[i]!));
    return out;
  }

  /** Every copy of one MTA queue id, in copy id order. */
  byQueueId(queueId: string): CopyRecord[] {
    return this.#collect(this.#byQueue.get(queueId));
  }

  /** Every copy of the messages with this Message-ID (with or without angle brackets). */
  byMessageId(messageId: string): CopyRecord[] {
    const key = messageIdKey(messageId);
    return key === '' ? [] : this.#collect(this.#byMessageId.get(key));
  }

  /** Copy id first, then queue id, then Message-ID; undefined when nothing in the history matches. */
  find(id: string): TrackLookup | undefined {
    const one = this.byCopyId(id);
    if (one) return { matchedBy: 'copy', records: [one] };
    const queue = this.byQueueId(id);
    if (queue.length > 0) return { matchedBy: 'queue', records: queue };
    const byMid = this.byMessageId(id);
    if (byMid.length > 0) return { matchedBy: 'message-id', records: byMid };
    return undefined;
  }

  #ensure(copyId: string, queueId: string): CopyRecord {
    let rec = this.#records.get(copyId);
    if (rec) return rec;
    rec = { copyId, queueId, messageId: '', intakeAddress: '', state: 'queued', final: false, events: [], omittedEvents: 0 };
    this.#records.set(copyId, rec);
    addTo(this.#byQueue, queueId, copyId);
    while (this.#records.size > this.capacity) this.#evictOldest();
    return rec;
  }

  #evictOldest(): void {
    const oldest = this.#records.keys().next();
    if (oldest.done === true) return;
    const rec = this.#records.get(oldest.value)!;
    this.#records.delete(oldest.value);
    removeFrom(this.#byQueue, rec.queueId, rec.copyId);
    if (rec.messageId !== '') removeFrom(this.#byMessageId, messageIdKey(rec.messageId), rec.copyId);
  }

  #collect(ids: Set<string> | undefined): CopyRecord[] {
    if (!ids) return [];
    const out: CopyRecord[] = [];
    for (const id of ids) {
      const rec = this.#records.get(id);
      if (rec) out.push(cloneRecord(rec));
    }
    return out.sort((a, b) => compareCopyIds(a.copyId, b.copyId));
  }
}

/** '4Xk.2' before '4Xk.10': the numeric suffix counts as a number. */
function compareCopyIds(a: string, b: string): number {
  const na = /^(.*)\.(\d+)$/.exec(a);
  const nb = /^(.*)\.(\d+)$/.exec(b);
  if (na && nb && na[1] === nb[1]) return Number(na[2]) - Number(nb[2]);
  return a < b ? -1 : a > b ? 1 : 0;
}

function addTo(index: Map<string, Set<string>>, key: string, id: string): void {
  let set = index.get(key);
  if (!set) {
    set = new Set();
    index.set(key, set);
  }
  set.add(id);
}

function removeFrom(index: Map<string, Set<string>>, key: string, id: string): void {
  const set = index.get(key);
  if (!set) return;
  set.delete(id);
  if (set.size === 0) index.delete(key);
}

/** Callers get copies: nothing outside may change the history. */
function cloneRecord(rec: CopyRecord): CopyRecord {
  return { ...rec, events: rec.events.map((e) => ({ ...e })) };
}
