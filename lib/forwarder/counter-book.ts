/**
 * The counters of `the.tdc.queue` (total and per intake domain), folded from the copy events alone, in
 * the gateway's view: removed undelivered after an attempt = hard bounced, never attempted = dropped;
 * enqueued = delivered + hardBounced + dropped + activeRecipients always. Pure; imports this folder only.
 */
import type { CopyEvent, ForwarderEvent } from './events';
import { zeroCounters, type ForwarderCounters } from './types';

const COPY_EVENT_TYPES: ReadonlySet<string> = new Set<CopyEvent['type']>([
  'enqueued', 'attempt', 'delivery_start', 'delivered', 'soft_bounce', 'hard_bounce', 'dropped',
]);

/** A copy's event (from the queue), as opposed to a connection or DNS event (from the agent). */
export function isCopyEvent(e: ForwarderEvent): e is CopyEvent {
  return COPY_EVENT_TYPES.has(e.type);
}

export class CounterBook {
  readonly #total = zeroCounters();
  readonly #byDomain = new Map<string, ForwarderCounters>();
  /** MIDs of the copies in the queue now: a copy refused at offer has none (its events carry the rest). */
  readonly #queued = new Set<number>();

  observe(e: CopyEvent): void {
    const { mid, destination, bytes } = e.copy;
    switch (e.type) {
      case 'enqueued':
        this.#queued.add(mid);
        this.#bump(destination, 'enqueued', 1);
        this.#bump(destination, 'activeRecipients', 1);
        this.#bump(destination, 'queuedBytes', bytes);
        return;
      case 'soft_bounce':
        this.#bump(destination, 'softBounced', 1);
        return;
      case 'delivered':
        this.#leave(mid, destination, bytes, 'delivered');
        return;
      case 'hard_bounce':
        this.#leave(mid, destination, bytes, 'hardBounced');
        return;
      case 'dropped':
        this.#leave(mid, destination, bytes, e.attempted ? 'hardBounced' : 'dropped');
        return;
      default:
        return;
    }
  }

  counters(): ForwarderCounters {
    return { ...this.#total };
  }

  countersByDomain(): Map<string, ForwarderCounters> {
    const out = new Map<string, ForwarderCounters>();
    for (const [d, c] of this.#byDomain) out.set(d, { ...c });
    return out;
  }

  #leave(mid: number, destination: string, bytes: number, field: 'delivered' | 'hardBounced' | 'dropped'): void {
    if (this.#queued.delete(mid)) {
      this.#bump(destination, 'activeRecipients', -1);
      this.#bump(destination, 'queuedBytes', -bytes);
    } else {
      // Refused at offer: offered and gone in one step, so the identity still holds.
      this.#bump(destination, 'enqueued', 1);
    }
    this.#bump(destination, field, 1);
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
}
