/**
 * Readiness of the daemon for `/readyz`: fed with the forwarder's events, it knows since when every
 * delivery attempt has failed and when a copy was last refused for lack of room; `readiness()` turns
 * that and the queue's fill into 200 or 503 with a one-line reason. Pure: time comes in the events
 * and the caller's `now`. Imports only the *types* of the forwarder's events.
 */
import type { ForwarderEvent } from '../forwarder/events';

/** A copy refused for lack of room keeps the daemon "not ready" this long (the queue is full in bytes). */
export const QUEUE_FULL_HOLD_MS = 30_000;

export interface ReadinessInput {
  now: number;
  /** `ready_failing_time`: how long every attempt must fail before we say not ready (ms). */
  failingTime: number;
  queue: { messages: number; bytes: number };
  limits: { maxMessages: number; maxBytes: number };
}

export interface Readiness {
  ready: boolean;
  /** One line: `ok`, or why not. */
  reason: string;
}

function secondsText(ms: number): string {
  return `${Math.round(ms / 1000)} s`;
}

export class IntakeHealth {
  /** First failed attempt since the last delivery; undefined while deliveries succeed. */
  #failingSince: number | undefined;
  #lastFailure = '';
  #queueFullAt: number | undefined;

  /** Take one forwarder event (any type; those that say nothing about health are ignored). */
  observe(e: ForwarderEvent): void {
    switch (e.type) {
      case 'delivered':
        this.#failingSince = undefined;
        this.#lastFailure = '';
        return;
      case 'soft_bounce':
      case 'hard_bounce':
        this.#fail(e.at, [e.result.dsn, e.result.detail].filter((s) => s !== '').join(' '));
        return;
      case 'connection_error':
        this.#fail(e.at, `${e.host} ${e.details}: ${e.reason}`);
        return;
      case 'dns_error':
        this.#fail(e.at, `DNS ${e.domain} ${e.rrtype} ${e.error}`);
        return;
      case 'dropped':
        if (e.reason === 'queue_full') this.#queueFullAt = e.at;
        else if (e.attempted) this.#fail(e.at, e.detail);
        return;
      default:
        return;
    }
  }

  #fail(at: number, why: string): void {
    this.#failingSince ??= at;
    // eslint-disable-next-line no-control-regex
    if (why !== '') this.#lastFailure = why.replace(/[\x00-\x1f\x7f]+/g, ' ').slice(0, 300);
  }

  readiness(input: ReadinessInput): Readiness {
    const { now, queue, limits } = input;
    if (queue.messages >= limits.maxMessages) {
      return { ready: false, reason: `queue full: ${queue.messages} of queue_max_messages ${limits.maxMessages} copies queued` };
    }
    if (queue.bytes >= limits.maxBytes) {
      return { ready: false, reason: `queue full: ${queue.bytes} of queue_max_bytes ${limits.maxBytes} bytes queued` };
    }
    if (this.#queueFullAt !== undefined && now - this.#queueFullAt < QUEUE_FULL_HOLD_MS) {
      return {
        ready: false,
        reason: `queue full: a copy was dropped for lack of room ${secondsText(now - this.#queueFullAt)} ago (${queue.messages} copies, ${queue.bytes} bytes queued)`,
      };
    }
    if (this.#failingSince !== undefined && now - this.#failingSince >= input.failingTime) {
      const last = this.#lastFailure === '' ? '' : `; last: ${this.#lastFailure}`;
      return {
        ready: false,
        reason: `intake failing: every delivery attempt for ${secondsText(now - this.#failingSince)} has failed (ready_failing_time ${secondsText(input.failingTime)})${last}`,
      };
    }
    return { ready: true, reason: 'ok' };
  }
}
