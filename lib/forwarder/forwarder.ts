/**
 * The Forwarder (the contract app.ts uses): the bounded queue `the.tdc.queue` (copy-queue.ts, decides
 * when) wired to an injected DeliveryAgent (decides how), the MID and DCID sequences, and one stream
 * of ForwarderEvents that the counters, the mail log, `track` and the metrics all subscribe to.
 * Validates its options once. Imports util and this folder only.
 */
import { systemClock, type Clock } from '../util/clock';
import type { Logger } from '../util/logger';
import { TdcError, describeError } from '../util/errors';
import { CopyQueue } from './copy-queue';
import { CounterBook, isCopyEvent } from './counter-book';
import type { DeliveryAgent, QueuedCopy } from './delivery-agent';
import type { ConnectionEvent, DnsEvent, ForwarderEvent } from './events';
import { IdSequence } from './id-sequence';
import type { DnsResolverLike } from './route';
import { SmtpAgent } from './smtp-agent';
import { type CopyIdentity, type ForwarderCounters, type ForwarderOptions, type JournalCopy } from './types';

/** What the forwarder hands a delivery agent it builds: the DCID sequence and where to report. */
export interface AgentHooks {
  /** The forwarder's DCID sequence (numbers that never repeat, across restarts too). */
  nextDcid: () => number;
  /** Connection and DNS facts, into the forwarder's one event stream. */
  onEvent: (e: ConnectionEvent | DnsEvent) => void;
  /** A connection took a copy (the `Delivery start` line). */
  onDeliveryStart: (copy: QueuedCopy, dcid: number) => void;
}

export interface ForwarderDeps {
  logger: Logger;
  clock?: Clock;
  /** An observer of every event from the start (more can `subscribe` later). */
  onEvent?: (e: ForwarderEvent) => void;
  /** The delivery agent, built with the forwarder's hooks. Default: the SMTP agent. Tests: a fake. */
  agent?: (hooks: AgentHooks) => DeliveryAgent<ForwarderOptions>;
  /** Tests: DNS answers without a DNS server (default agent only). */
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
  // The relay comes parsed (the config loader's RelaySpec): only its port is checked, like mxPort.
  if (o.relay !== undefined && (!Number.isInteger(o.relay.port) || o.relay.port < 1 || o.relay.port > 65535)) bad('relay', 'a port 1-65535', o.relay);
  if (o.mxPort !== undefined && (!Number.isInteger(o.mxPort) || o.mxPort < 1 || o.mxPort > 65535)) bad('mxPort', 'a port 1-65535', o.mxPort);
}

export class Forwarder {
  readonly #queue: CopyQueue;
  readonly #agent: DeliveryAgent<ForwarderOptions>;
  readonly #book = new CounterBook();
  readonly #observers: ((e: ForwarderEvent) => void)[] = [];
  readonly #logger: Logger;
  readonly #mids: IdSequence;
  readonly #dcids: IdSequence;

  constructor(options: ForwarderOptions, deps: ForwarderDeps) {
    validateForwarderOptions(options);
    const o = { ...options };
    const clock = deps.clock ?? systemClock;
    this.#logger = deps.logger;
    this.#mids = new IdSequence(clock);
    this.#dcids = new IdSequence(clock);
    if (deps.onEvent) this.#observers.push(deps.onEvent);
    const hooks: AgentHooks = {
      nextDcid: () => this.#dcids.next(),
      onEvent: (e: ConnectionEvent | DnsEvent) => this.#publish(e),
      onDeliveryStart: (copy: QueuedCopy, dcid: number) => this.#queue.deliveryStart(copy.mid, dcid),
    };
    this.#agent = deps.agent
      ? deps.agent(hooks)
      : new SmtpAgent(o, { ...hooks, logger: deps.logger, clock, ...(deps.resolver ? { resolver: deps.resolver } : {}) });
    this.#queue = new CopyQueue(o, {
      clock, agent: this.#agent, logger: deps.logger,
      nextMid: () => this.#mids.next(),
      emit: (e) => this.#publish(e),
    });
  }

  /** Observe every later event; returns the unsubscribe function. Observers must not throw (it is logged). */
  subscribe(observer: (e: ForwarderEvent) => void): () => void {
    this.#observers.push(observer);
    return () => {
      const i = this.#observers.indexOf(observer);
      if (i >= 0) this.#observers.splice(i, 1);
    };
  }

  /** Instant; false = dropped (queue full or shutting down), with a `dropped` event. */
  offer(copy: JournalCopy): boolean {
    return this.#queue.offer(copy) !== undefined;
  }

  /**
   * Offer a copy that is built only if it can be queued: when not even `minBytes` (a lower bound
   * of its size) fits, it is dropped exactly like a refused `offer`, and `build` never runs.
   * Saves building, then discarding, megabytes while the intake is stalled.
   */
  offerBuilt(copy: CopyIdentity, minBytes: number, build: () => JournalCopy['raw']): boolean {
    const refused = this.#queue.refusal(minBytes, `this copy at least ${minBytes} bytes, not built`);
    if (refused !== undefined) {
      this.#queue.refuse(copy, minBytes, refused);
      return false;
    }
    return this.#queue.offer({ ...copy, raw: build() }) !== undefined;
  }

  /** Counters of `the.tdc.queue`. */
  counters(): ForwarderCounters {
    const c = this.#book.counters();
    c.connectionsOut = this.#agent.stats().connections;
    return c;
  }

  /** Counters per intake domain. */
  countersByDomain(): Map<string, ForwarderCounters> {
    const m = this.#book.countersByDomain();
    const conns = this.#agent.stats().byDomain;
    for (const [domain, c] of m) c.connectionsOut = conns.get(domain) ?? 0;
    return m;
  }

  /** New options apply to new copies and new connections; queued copies keep their age limit. */
  reconfigure(options: ForwarderOptions): void {
    validateForwarderOptions(options);
    const o = { ...options };
    this.#agent.reconfigure(o);
    this.#queue.reconfigure(o);
  }

  /** SIGTERM: stop taking copies, wait for the queue to empty or `graceMs`, drop the rest. */
  drain(graceMs: number): Promise<void> {
    return this.#queue.drain(graceMs);
  }

  /** Drop anything still queued (with events), close every connection. */
  async close(): Promise<void> {
    this.#queue.close();
    await this.#agent.close();
  }

  #publish(e: ForwarderEvent): void {
    if (isCopyEvent(e)) this.#book.observe(e);
    for (const observer of [...this.#observers]) {
      try {
        observer(e);
      } catch (err) {
        this.#logger.error(`an observer of the forwarder's ${e.type} event failed: ${describeError(err)}`);
      }
    }
  }
}
