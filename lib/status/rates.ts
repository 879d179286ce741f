/**
 * The recent history behind the status page's charts: a small ring of samples of the daemon's
 * running totals (one per `intervalMs`, 10 s by default, 10 minutes kept), and the per-interval
 * rates between them. Pure: the caller samples on its clock. Imports only status siblings' types.
 */
import type { MilterStatsSnapshot, QueueCounters } from './metrics';

export interface RateSample {
  /** Epoch ms. */
  at: number;
  messages: number;
  enqueued: number;
  delivered: number;
  softBounced: number;
  hardBounced: number;
  dropped: number;
  /** Gauges at that moment. */
  queued: number;
  queuedBytes: number;
}

/** Per second over one interval, ending at `at`; `queued` is the gauge at its end. */
export interface RatePoint {
  at: number;
  messages: number;
  enqueued: number;
  delivered: number;
  bounced: number;
  dropped: number;
  queued: number;
}

export class RateHistory {
  readonly #samples: RateSample[] = [];
  constructor(readonly capacity = 61, readonly intervalMs = 10_000) {
    if (!Number.isInteger(capacity) || capacity < 2) throw new RangeError(`capacity: expected an integer >= 2, got ${capacity}`);
  }

  /** Record the totals at `now` (oldest sample forgotten past `capacity`). */
  sample(now: number, queue: QueueCounters, milter: MilterStatsSnapshot): void {
    this.#samples.push(RateHistory.take(now, queue, milter));
    if (this.#samples.length > this.capacity) this.#samples.shift();
  }

  get samples(): readonly RateSample[] {
    return this.#samples;
  }

  /** The totals at `now` as a sample (not stored). */
  static take(now: number, queue: QueueCounters, milter: MilterStatsSnapshot): RateSample {
    return {
      at: now, messages: milter.messagesTotal, enqueued: queue.enqueued, delivered: queue.delivered,
      softBounced: queue.softBounced, hardBounced: queue.hardBounced, dropped: queue.dropped,
      queued: queue.activeRecipients, queuedBytes: queue.queuedBytes,
    };
  }

  /**
   * Rates between successive samples, oldest first. With `live` (the totals now), the interval
   * from the last sample to now is the newest point, so a fresh daemon shows data at once.
   */
  points(live?: RateSample): RatePoint[] {
    const all = live !== undefined && this.#samples.length > 0 && live.at - this.#samples[this.#samples.length - 1]!.at >= 1000
      ? [...this.#samples, live] : this.#samples;
    const out: RatePoint[] = [];
    for (let i = 1; i < all.length; i++) {
      const a = all[i - 1]!;
      const b = all[i]!;
      const secs = (b.at - a.at) / 1000;
      if (!(secs > 0)) continue;
      // A counter that went down (never, short of a bug) reads as 0, not as a negative rate.
      const rate = (x: number, y: number) => Math.max(0, y - x) / secs;
      out.push({
        at: b.at,
        messages: rate(a.messages, b.messages),
        enqueued: rate(a.enqueued, b.enqueued),
        delivered: rate(a.delivered, b.delivered),
        bounced: rate(a.hardBounced, b.hardBounced),
        dropped: rate(a.dropped, b.dropped),
        queued: b.queued,
      });
    }
    return out;
  }
}
