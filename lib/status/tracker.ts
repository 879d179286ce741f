/**
 * Message tracking: the life of every journal copy over a bounded recent history (oldest evicted),
 * subscribed to the forwarder's event stream (the copy events carry everything: ids, Message-ID,
 * intake, outcome). Lookup by copy id, MID, MTA queue id or Message-ID; each copy carries message
 * tracking's one-line summary in the gateway's words. Imports only the *types* of the forwarder
 * (and MAX_ATTEMPTS from its types.ts, which has no code).
 */
import type { CopyEvent, DeliveryResult, ForwarderEvent } from '../forwarder';
import { MAX_ATTEMPTS } from '../forwarder/types';

/** The history's event kinds: the queue's copy event types. */
export type CopyEventKind = CopyEvent['type'];

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
  /** The gateway-style MID. */
  mid: number;
  queueId: string;
  messageId: string;
  intakeAddress: string;
  state: CopyState;
  final: boolean;
  /** Message tracking's one-line summary (gateway wording, without the time). */
  summary: string;
  /** When the state in `summary` was reached (epoch ms). */
  summaryAt: number;
  /** Events in the order they happened. */
  events: CopyHistoryEntry[];
  /** Middle events left out because one copy had more than `maxEventsPerCopy`. */
  omittedEvents: number;
}

export type TrackMatch = 'copy' | 'mid' | 'queue' | 'message-id';

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

/** The gateway's name for the intake service, as its lines and message tracking write it. */
export const SETD = 'Cisco Secure Email Threat Defense';

/** "4.3.0 Temporary failure at intake ('451 4.3.0 try later')". */
export function resultText(r: DeliveryResult): string {
  return r.reply === '' ? `${r.dsn} ${r.detail}` : `${r.dsn} ${r.detail} ('${r.reply}')`;
}

/** The history line of one copy event. */
function detailOf(e: CopyEvent): string {
  switch (e.type) {
    case 'enqueued': return `MID ${e.copy.mid} queued for ${e.copy.intakeAddress} (${e.copy.bytes} bytes)`;
    case 'attempt': return `attempt ${e.attempt} of ${MAX_ATTEMPTS}`;
    case 'delivery_start': return `delivery start, attempt ${e.attempt}`;
    case 'delivered': return e.result.reply;
    case 'soft_bounce': return `${resultText(e.result)}; retry in ${Number((e.retryInMs / 1000).toFixed(3))} s`;
    case 'hard_bounce': return resultText(e.result);
    case 'dropped': return e.last ? `${e.detail} (last: ${resultText(e.last)})` : e.detail;
  }
}

function stateOf(e: CopyEvent): CopyState {
  switch (e.type) {
    case 'enqueued': return 'queued';
    case 'attempt':
    case 'delivery_start': return 'delivering';
    case 'soft_bounce': return 'retrying';
    case 'delivered': return 'delivered';
    case 'hard_bounce': return 'hard_bounce';
    // The gateway's view: removed after an attempt is a hard bounce.
    case 'dropped': return e.attempted ? 'hard_bounce' : 'dropped';
  }
}

/** Message tracking's summary line for a copy in its state (the gateway's wording where it has one). */
export function summaryOf(mid: number, e: CopyEvent): string {
  const head = `TDC: Message ${mid}`;
  switch (e.type) {
    case 'delivered': return `${head} was successfully delivered for scanning with ${SETD}.`;
    case 'hard_bounce':
      return e.result.kind === 'tls' ? `${head} delivery failed to ${SETD}: TLS Error.` : `${head} delivery failed to ${SETD}: Hard Bounced.`;
    case 'dropped':
      return e.attempted
        ? `${head} delivery failed to ${SETD}: Hard Bounced.`
        : `${head} was not delivered to ${SETD}: dropped (${e.detail.replace(/ \(.*$/, '')}).`;
    case 'soft_bounce': return `${head} delivery to ${SETD} was delayed; retrying.`;
    default: return `${head} is queued for delivery to ${SETD}.`;
  }
}

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
  readonly #byMid = new Map<number, string>();

  constructor(options: TrackerOptions = {}) {
    this.capacity = positiveInteger('capacity', options.capacity, 10_000);
    this.maxEventsPerCopy = positiveInteger('maxEventsPerCopy', options.maxEventsPerCopy, 100);
    if (this.maxEventsPerCopy < 2) throw new RangeError(`maxEventsPerCopy: expected an integer >= 2, got ${this.maxEventsPerCopy}`);
  }

  /** Copies remembered now. */
  get size(): number {
    return this.#records.size;
  }

  /** One event of the forwarder's stream; connection and DNS events are not a copy's. */
  record(event: ForwarderEvent): void {
    if (!('copy' in event) || event.type === 'dns_error') return;
    const e: CopyEvent = event;
    const rec = this.#ensure(e);
    const entry: CopyHistoryEntry = { kind: e.type, at: e.at, detail: detailOf(e) };
    const dcid = e.type === 'delivery_start' ? e.dcid : 'result' in e ? e.result.dcid : e.type === 'dropped' ? e.last?.dcid : undefined;
    if (dcid !== undefined) entry.dcid = dcid;
    if (rec.events.length >= this.maxEventsPerCopy) {
      // Keep the first event (when it was queued) and the most recent ones.
      rec.events.splice(1, 1);
      rec.omittedEvents += 1;
    }
    rec.events.push(entry);
    // A final state stays final: a late event (e.g. a stray retry) must not reopen it.
    if (!rec.final) {
      rec.state = stateOf(e);
      rec.final = FINAL_STATES.includes(rec.state);
      rec.summary = summaryOf(rec.mid, e);
      rec.summaryAt = e.at;
    }
  }

  /** The copy with this MID, if still remembered. */
  byMid(mid: number): CopyRecord | undefined {
    const id = this.#byMid.get(mid);
    return id === undefined ? undefined : this.byCopyId(id);
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

  /** Copy id first, then MID, then queue id, then Message-ID; undefined when nothing in the history matches. */
  find(id: string): TrackLookup | undefined {
    const one = this.byCopyId(id);
    if (one) return { matchedBy: 'copy', records: [one] };
    const byNumber = /^\d{1,15}$/.test(id) ? this.byMid(Number(id)) : undefined;
    if (byNumber) return { matchedBy: 'mid', records: [byNumber] };
    const queue = this.byQueueId(id);
    if (queue.length > 0) return { matchedBy: 'queue', records: queue };
    const byMid = this.byMessageId(id);
    if (byMid.length > 0) return { matchedBy: 'message-id', records: byMid };
    return undefined;
  }

  #ensure(e: CopyEvent): CopyRecord {
    const { copyId, queueId, mid, messageId, intakeAddress } = e.copy;
    let rec = this.#records.get(copyId);
    if (rec) return rec;
    rec = {
      // state and summary: `record` sets both from this very event (a new record is never final).
      copyId, mid, queueId, messageId, intakeAddress, state: 'queued', final: false,
      summary: '', summaryAt: e.at, events: [], omittedEvents: 0,
    };
    this.#records.set(copyId, rec);
    addTo(this.#byQueue, queueId, copyId);
    this.#byMid.set(mid, copyId);
    const key = messageIdKey(messageId);
    if (key !== '') addTo(this.#byMessageId, key, copyId);
    while (this.#records.size > this.capacity) this.#evictOldest();
    return rec;
  }

  #evictOldest(): void {
    const oldest = this.#records.keys().next();
    if (oldest.done === true) return;
    const rec = this.#records.get(oldest.value)!;
    this.#records.delete(oldest.value);
    removeFrom(this.#byQueue, rec.queueId, rec.copyId);
    this.#byMid.delete(rec.mid);
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
