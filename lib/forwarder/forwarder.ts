/**
 * The Forwarder (the contract app.ts uses): the bounded queue `the.tdc.queue` (copy-queue.ts,
 * decides when) wired to the SMTP delivery agent (smtp-delivery.ts, decides how), with counters
 * that add the open connections to the queue's own. Validates its options once.
 * Imports util and this folder only.
 */
import { systemClock, type Clock } from '../util/clock';
import type { Logger } from '../util/logger';
import { TdcError } from '../util/errors';
import { CopyQueue } from './copy-queue';
import { SmtpDelivery } from './smtp-delivery';
import { parseRelay, type DnsResolverLike } from './route';
import type { CopyEvent, CopyIdentity, DeliverFn, ForwarderCounters, ForwarderOptions, JournalCopy } from './types';

export interface ForwarderDeps {
  logger: Logger;
  clock?: Clock;
  onEvent?: (e: CopyEvent) => void;
  /** Tests: replaces the SMTP delivery agent (queue and retry logic on a ManualClock). */
  deliver?: DeliverFn;
  /** Tests: DNS answers without a DNS server. */
  resolver?: DnsResolverLike;
}

const POSITIVE_INTS: (keyof ForwarderOptions)[] = [
  'queueMaxMessages', 'queueMaxBytes', 'minConnections', 'maxConnections', 'messagesPerConnection',
  'maxQueueAge', 'connectTimeout', 'commandTimeout',
];

/** Throws TdcError('ECONFIG', 'forwarder: key: expected …, got …') on the first bad option. */
export function validateForwarderOptions(o: ForwarderOptions): void {
  const bad = (key: string, expected: string, got: unknown): never => {
    throw new TdcError('ECONFIG', `forwarder: ${key}: expected ${expected}, got ${JSON.stringify(got)}`);
  };
  for (const key of POSITIVE_INTS) {
    const v = o[key];
    if (typeof v !== 'number' || !Number.isFinite(v) || v < 1) bad(key, 'a number >= 1', v);
  }
  if (typeof o.retryDelay !== 'number' || !Number.isFinite(o.retryDelay) || o.retryDelay < 0) bad('retryDelay', 'a number >= 0', o.retryDelay);
  if (typeof o.heloName !== 'string' || !/^[A-Za-z0-9.:[\]-]+$/.test(o.heloName)) bad('heloName', 'a host name', o.heloName);
  if (o.relay !== undefined && o.relay !== '') parseRelay(o.relay);
  if (o.mxPort !== undefined && (!Number.isInteger(o.mxPort) || o.mxPort < 1 || o.mxPort > 65535)) bad('mxPort', 'a port 1-65535', o.mxPort);
}

function normalized(o: ForwarderOptions): ForwarderOptions {
  const n = { ...o };
  if (n.relay === '') delete n.relay;
  return n;
}

export class Forwarder {
  readonly #queue: CopyQueue;
  readonly #smtp: SmtpDelivery | undefined;

  constructor(options: ForwarderOptions, deps: { logger: Logger; clock?: Clock; onEvent?: (e: CopyEvent) => void } & Partial<ForwarderDeps>) {
    validateForwarderOptions(options);
    const o = normalized(options);
    const clock = deps.clock ?? systemClock;
    let deliver = deps.deliver;
    if (!deliver) {
      this.#smtp = new SmtpDelivery(o, { logger: deps.logger, clock, resolver: deps.resolver });
      deliver = this.#smtp.deliver;
    }
    this.#queue = new CopyQueue(o, { logger: deps.logger, clock, deliver, onEvent: deps.onEvent });
  }

  /** Instant; false = dropped (queue full or shutting down), logged and counted. */
  offer(copy: JournalCopy): boolean {
    return this.#queue.offer(copy);
  }

  /**
   * Offer a copy that is built only if it can be queued: when not even `minBytes` (a lower bound
   * of its size) fits, it is dropped, logged and counted exactly like a refused `offer`, and
   * `build` never runs. Saves building, then discarding, megabytes while the intake is stalled.
   */
  offerBuilt(copy: CopyIdentity, minBytes: number, build: () => JournalCopy['raw']): boolean {
    const refused = this.#queue.refusal(minBytes, `this copy at least ${minBytes} bytes, not built`);
    if (refused !== undefined) {
      this.#queue.refuse(copy, refused);
      return false;
    }
    return this.#queue.offer({ ...copy, raw: build() });
  }

  /** Counters of `the.tdc.queue`. */
  counters(): ForwarderCounters {
    const c = this.#queue.counters();
    c.connectionsOut = this.#smtp?.connections().total ?? 0;
    return c;
  }

  /** Counters per intake domain. */
  countersByDomain(): Map<string, ForwarderCounters> {
    const m = this.#queue.countersByDomain();
    const conns = this.#smtp?.connections().byDomain ?? new Map<string, number>();
    for (const [domain, c] of m) c.connectionsOut = conns.get(domain) ?? 0;
    return m;
  }

  /** New options apply to new copies and new connections; queued copies keep their age limit. */
  reconfigure(options: ForwarderOptions): void {
    validateForwarderOptions(options);
    const o = normalized(options);
    this.#smtp?.reconfigure(o);
    this.#queue.reconfigure(o);
  }

  /** SIGTERM: stop taking copies, wait for the queue to empty or `graceMs`, drop and log the rest. */
  drain(graceMs: number): Promise<void> {
    return this.#queue.drain(graceMs);
  }

  /** Drop anything still queued (logged), close every connection. */
  async close(): Promise<void> {
    this.#queue.close();
    await this.#smtp?.close();
  }
}
