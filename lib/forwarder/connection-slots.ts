/**
 * The hard cap on open SMTP connections across all transports of the forwarder: a counting
 * semaphore taken before a socket is opened and given back when it closes. Waiters are served in
 * order; `onPressure` lets the owner close idle connections elsewhere when someone has to wait.
 * Imports nothing.
 */

export class ConnectionSlots {
  #max: number;
  #open = 0;
  readonly #waiters: (() => void)[] = [];
  readonly #onPressure: () => void;

  constructor(max: number, onPressure: () => void = () => {}) {
    this.#max = Math.max(1, max);
    this.#onPressure = onPressure;
  }

  /** Slots taken (open or opening connections). */
  get open(): number {
    return this.#open;
  }

  get waiting(): number {
    return this.#waiters.length;
  }

  /** Run `fn` once a slot is ours (at once if one is free). */
  acquire(fn: () => void): void {
    if (this.#open < this.#max && this.#waiters.length === 0) {
      this.#open += 1;
      fn();
      return;
    }
    this.#waiters.push(fn);
    this.#onPressure();
  }

  release(): void {
    this.#open = Math.max(0, this.#open - 1);
    this.#pump();
  }

  setMax(max: number): void {
    this.#max = Math.max(1, max);
    this.#pump();
  }

  #pump(): void {
    while (this.#open < this.#max && this.#waiters.length > 0) {
      this.#open += 1;
      this.#waiters.shift()!();
    }
  }
}
