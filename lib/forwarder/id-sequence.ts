/**
 * The gateway's numeric ids (MID of a copy, DCID of a delivery connection): plain integers that keep
 * increasing, across restarts too. Each id is the clock's milliseconds since ID_EPOCH, or one more
 * than the previous id when the clock has not moved on, so a restart continues above the last run.
 * Pure (reads only the injected clock); imports util types only.
 */
import type { Clock } from '../util/clock';

/** 2026-01-01T00:00:00Z: keeps ids at 11 digits for decades (ms since the Unix epoch would be 13). */
export const ID_EPOCH = Date.UTC(2026, 0, 1);

export class IdSequence {
  readonly #clock: Clock;
  #last: number;

  constructor(clock: Clock) {
    this.#clock = clock;
    this.#last = 0;
  }

  /** The last id given, 0 before the first. */
  get last(): number {
    return this.#last;
  }

  /**
   * The next id: strictly greater than every earlier one of this sequence. Ids repeat across a
   * restart only if the previous run gave ids faster than one per millisecond for longer than the
   * daemon was down, or the clock stepped back by more than that.
   */
  next(): number {
    const fromClock = Math.max(1, Math.floor(this.#clock.now()) - ID_EPOCH);
    this.#last = Math.max(this.#last + 1, fromClock);
    return this.#last;
  }
}
