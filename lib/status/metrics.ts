/**
 * Prometheus metrics on a private prom-client Registry: the forwarder's counters per destination
 * (`the.tdc.queue` and each intake domain) and the milter's stats, both read from source functions
 * at scrape time; drops by reason, last delivery and copy lag from the forwarder's events
 * (`observeForwarderEvent`); journal decisions, end-of-body latency, build and reload facts.
 * Imports prom-client and only the *types* of the forwarder's and milter's contracts (and the
 * queue's name from the forwarder's types.ts, which has no code).
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { ForwarderCounters } from '../forwarder';
import type { DropReason, ForwarderEvent } from '../forwarder/events';
import { QUEUE_NAME } from '../forwarder/types';
import type { MilterStats } from '../milter';

export type QueueCounters = ForwarderCounters;

/** `forwarder.counters()` and `forwarder.countersByDomain()` taken together. */
export interface QueueSnapshot {
  total: QueueCounters;
  byDomain: Map<string, QueueCounters>;
}

export type MilterStatsSnapshot = MilterStats;

/** The label value of the whole queue, as Cisco's tophosts names it. */
export const QUEUE_DESTINATION = QUEUE_NAME;

/** The policy label when a decision was made before any policy applied (not incoming, oversized…). */
export const NO_POLICY = '(none)';

/**
 * What happened to a message for one policy: `journaled` (a copy was offered), `skipped` (the
 * policy says no journal for these recipients), `not_journaled` (not incoming, journaling off, loop
 * safety…), `oversized`, `error` (our bug; the original still went on). A closed set keeps the
 * label cardinality bounded.
 */
export type JournalOutcome = 'journaled' | 'skipped' | 'skipped_header' | 'not_journaled' | 'oversized' | 'error';

/** End-of-body handling is meant to take well under a millisecond; 100 ms is already very slow. */
export const EOB_BUCKETS: readonly number[] = [0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1];

/** Every reason a copy can be dropped for (the forwarder's `DropReason`), in exposition order. */
export const DROP_REASONS: readonly DropReason[] = ['queue_full', 'too_old', 'retries_spent', 'shutting_down'];

/** Copy lag (enqueue to the intake's 250) from well under a second up to max_queue_age's range. */
export const LAG_BUCKETS: readonly number[] = [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300];

/** Copies whose enqueue time is kept for the lag: far above any queue_max_messages in use. */
const MAX_LAG_ENTRIES = 1_000_000;

export interface QueueLimits {
  queueMaxMessages: number;
  queueMaxBytes: number;
}

export interface StatusMetricsOptions {
  queue: () => QueueSnapshot;
  milter: () => MilterStatsSnapshot;
  /** Also export prom-client's process_* and nodejs_* metrics. @default false */
  processMetrics?: boolean;
  /** `tdc_build_info{version,node}`. @default '0.0.0' */
  version?: string;
  /** The queue limits now in force (they change on reload). */
  limits?: () => QueueLimits;
  /** Epoch ms of the start: the first config load, and "last delivered" until the first delivery. */
  startedAt?: number;
}

type QueueField = keyof QueueCounters;

/** name, help, field, kind: one row per forwarder metric. */
const QUEUE_METRICS: readonly [string, string, QueueField, 'counter' | 'gauge'][] = [
  ['tdc_queue_active_recipients', 'Journal copies in the queue now (waiting, being delivered or waiting to retry)', 'activeRecipients', 'gauge'],
  ['tdc_connections_out', 'SMTP connections open to the intake now', 'connectionsOut', 'gauge'],
  ['tdc_queue_bytes', 'Bytes of journal copies in the queue now', 'queuedBytes', 'gauge'],
  ['tdc_enqueued_total', 'Journal copies taken into the queue', 'enqueued', 'counter'],
  ['tdc_delivered_total', 'Journal copies accepted by the intake', 'delivered', 'counter'],
  ['tdc_soft_bounced_total', 'Delivery attempts that failed temporarily (the copy is retried)', 'softBounced', 'counter'],
  ['tdc_hard_bounced_total', 'Journal copies refused for good by the intake, or removed from the queue undelivered after an attempt (retries spent, max_queue_age, shutdown)', 'hardBounced', 'counter'],
];

const MILTER_METRICS: readonly [string, string, keyof MilterStatsSnapshot, 'counter' | 'gauge'][] = [
  ['tdc_milter_sessions_active', 'Milter sessions (MTA connections) open now', 'activeSessions', 'gauge'],
  ['tdc_milter_connections_total', 'Milter connections accepted', 'connectionsTotal', 'counter'],
  ['tdc_milter_messages_total', 'Messages seen at end-of-body', 'messagesTotal', 'counter'],
  ['tdc_milter_protocol_errors_total', 'Milter connections ended by a protocol error', 'protocolErrors', 'counter'],
];

/** A count as Prometheus may see it: a finite number >= 0. */
function sane(n: number): number {
  return Number.isFinite(n) && n >= 0 ? n : 0;
}

export class StatusMetrics {
  readonly registry = new Registry();
  readonly #queueSource: () => QueueSnapshot;
  readonly #milterSource: () => MilterStatsSnapshot;
  /** One snapshot per scrape, so every queue metric of a scrape agrees with the others. */
  #scrapeQueue: QueueSnapshot | undefined;
  readonly #decisions: Counter<'policy' | 'outcome'>;
  readonly #eob: Histogram;
  readonly #journal: Histogram;
  readonly #attempts: Counter<'outcome' | 'kind'>;
  readonly #connectionErrors: Counter<'details'>;
  readonly #lag: Histogram;
  readonly #reloadOk: Gauge;
  readonly #reloadAt: Gauge;
  /** destination → reason → copies dropped; `the.tdc.queue` is the sum. */
  readonly #dropped = new Map<string, Map<DropReason, number>>();
  /** destination → epoch seconds of the last delivery. */
  readonly #lastDelivered = new Map<string, number>();
  /** copy id → epoch ms it was enqueued, while it is in the queue (for the copy lag). */
  readonly #enqueuedAt = new Map<string, number>();

  constructor(options: StatusMetricsOptions) {
    this.#queueSource = options.queue;
    this.#milterSource = options.milter;
    const registers = [this.registry];

    for (const [name, help, field, kind] of QUEUE_METRICS) {
      const rows = (): [string, number][] => {
        const snap = this.#queue();
        const out: [string, number][] = [[QUEUE_DESTINATION, sane(snap.total[field])]];
        for (const domain of [...snap.byDomain.keys()].sort()) out.push([domain, sane(snap.byDomain.get(domain)![field])]);
        return out;
      };
      // reset() first: a domain that left the queue's table leaves the exposition too.
      if (kind === 'gauge') {
        new Gauge({
          name, help, labelNames: ['destination'], registers,
          collect() {
            this.reset();
            for (const [destination, v] of rows()) this.set({ destination }, v);
          },
        });
      } else {
        new Counter({
          name, help, labelNames: ['destination'], registers,
          collect() {
            this.reset();
            for (const [destination, v] of rows()) this.inc({ destination }, v);
          },
        });
      }
    }

    for (const [name, help, field, kind] of MILTER_METRICS) {
      const milter = this.#milterSource;
      if (kind === 'gauge') {
        new Gauge({ name, help, registers, collect() { this.set(sane(milter()[field])); } });
      } else {
        new Counter({
          name, help, registers,
          collect() {
            this.reset();
            this.inc(sane(milter()[field]));
          },
        });
      }
    }

    this.#decisions = new Counter({
      name: 'tdc_journal_decisions_total',
      help: 'Journal decisions per message and policy',
      labelNames: ['policy', 'outcome'],
      registers,
    });
    this.#eob = new Histogram({
      name: 'tdc_eob_duration_seconds',
      help: 'Time from the read that completed an end-of-body to our reply to the MTA',
      buckets: [...EOB_BUCKETS],
      registers,
    });
    this.#journal = new Histogram({
      name: 'tdc_journal_duration_seconds',
      help: 'Time spent per message after the end-of-body reply: decide, build and enqueue the copies',
      buckets: [...EOB_BUCKETS],
      registers,
    });
    this.#attempts = new Counter({
      name: 'tdc_delivery_attempts_total',
      help: 'Delivery attempts by outcome and by the retry-table row of a failure (kind)',
      labelNames: ['outcome', 'kind'],
      registers,
    });
    this.#connectionErrors = new Counter({
      name: 'tdc_connection_errors_total',
      help: 'Connections to the intake that failed, by the gateway\'s details word (timeout, refused, reset, tls)',
      labelNames: ['details'],
      registers,
    });
    this.#lag = new Histogram({
      name: 'tdc_copy_lag_seconds',
      help: 'Time from a journal copy entering the queue to the intake accepting it',
      buckets: [...LAG_BUCKETS],
      registers,
    });

    const startedSeconds = (options.startedAt ?? Date.now()) / 1000;
    const dropped = this.#dropped;
    new Counter({
      name: 'tdc_dropped_total',
      help: 'Journal copies never attempted and given up, by reason (queue_full, shutting_down, too_old); one removed after an attempt counts in tdc_hard_bounced_total, as the gateway counts it',
      labelNames: ['destination', 'reason'], registers,
      collect() {
        this.reset();
        // Every reason of the whole queue is always there, so increase() sees the first drop.
        for (const reason of DROP_REASONS) this.inc({ destination: QUEUE_DESTINATION, reason }, dropped.get(QUEUE_DESTINATION)?.get(reason) ?? 0);
        for (const destination of [...dropped.keys()].filter((d) => d !== QUEUE_DESTINATION).sort()) {
          for (const [reason, n] of dropped.get(destination)!) this.inc({ destination, reason }, n);
        }
      },
    });
    const lastDelivered = this.#lastDelivered;
    lastDelivered.set(QUEUE_DESTINATION, startedSeconds);
    new Gauge({
      name: 'tdc_last_delivered_timestamp_seconds',
      help: 'When the intake last accepted a journal copy (for the.tdc.queue: the start time until the first delivery)',
      labelNames: ['destination'], registers,
      collect() {
        this.reset();
        this.set({ destination: QUEUE_DESTINATION }, lastDelivered.get(QUEUE_DESTINATION)!);
        for (const d of [...lastDelivered.keys()].filter((k) => k !== QUEUE_DESTINATION).sort()) this.set({ destination: d }, lastDelivered.get(d)!);
      },
    });
    const limits = options.limits;
    const limitGauge = (name: string, help: string, field: keyof QueueLimits): void => {
      if (!limits) return;
      new Gauge({ name, help, registers, collect() { this.set(sane(limits()[field])); } });
    };
    limitGauge('tdc_queue_max_messages', 'queue_max_messages: journal copies the queue holds at most', 'queueMaxMessages');
    limitGauge('tdc_queue_max_bytes', 'queue_max_bytes: bytes of journal copies the queue holds at most', 'queueMaxBytes');
    new Gauge({
      name: 'tdc_build_info',
      help: 'Always 1: the tdc-milter version and the Node.js version it runs on',
      labelNames: ['version', 'node'], registers,
    }).set({ version: options.version ?? '0.0.0', node: process.versions.node }, 1);
    this.#reloadOk = new Gauge({
      name: 'tdc_config_last_reload_successful',
      help: 'Whether the last configuration reload (SIGHUP) succeeded: 1 yes, 0 no (the old settings stay)',
      registers,
    });
    this.#reloadAt = new Gauge({
      name: 'tdc_config_last_reload_success_timestamp_seconds',
      help: 'When the configuration was last loaded successfully (the start, or the last good reload)',
      registers,
    });
    this.#reloadOk.set(1);
    this.#reloadAt.set(startedSeconds);
    if (options.processMetrics === true) collectDefaultMetrics({ register: this.registry });
  }

  /** A configuration reload: `ok` false keeps the last good timestamp. `when` is epoch ms. */
  noteReload(ok: boolean, when: number): void {
    this.#reloadOk.set(ok ? 1 : 0);
    if (ok) this.#reloadAt.set(when / 1000);
  }

  /**
   * One event of the forwarder's stream: drops by reason, last delivery, copy lag, attempts by
   * outcome and retry-table row, connection errors (the queue counters are read at scrape).
   */
  observeForwarderEvent(e: ForwarderEvent): void {
    if (e.type === 'delivered' || e.type === 'soft_bounce' || e.type === 'hard_bounce') {
      this.#attempts.inc({ outcome: e.result.outcome, kind: e.result.kind ?? 'none' });
    } else if (e.type === 'dropped' && e.reason === 'retries_spent' && e.last) {
      // The last failed attempt of a copy: no soft_bounce event follows it.
      this.#attempts.inc({ outcome: e.last.outcome, kind: e.last.kind ?? 'none' });
    } else if (e.type === 'connection_error') {
      this.#connectionErrors.inc({ details: e.details });
    }
    switch (e.type) {
      case 'enqueued':
        this.#enqueuedAt.set(e.copy.copyId, e.at);
        // Bounded even if a final event were ever missed: forget the oldest.
        if (this.#enqueuedAt.size > MAX_LAG_ENTRIES) this.#enqueuedAt.delete(this.#enqueuedAt.keys().next().value!);
        return;
      case 'delivered': {
        const seconds = e.at / 1000;
        this.#lastDelivered.set(QUEUE_DESTINATION, seconds);
        if (e.copy.destination !== '') this.#lastDelivered.set(e.copy.destination, seconds);
        const since = this.#enqueuedAt.get(e.copy.copyId);
        this.#enqueuedAt.delete(e.copy.copyId);
        if (since !== undefined && e.at >= since) this.#lag.observe((e.at - since) / 1000);
        return;
      }
      case 'hard_bounce':
        this.#enqueuedAt.delete(e.copy.copyId);
        return;
      case 'dropped':
        this.#enqueuedAt.delete(e.copy.copyId);
        // Removed after an attempt: the gateway counts it hard bounced (tdc_hard_bounced_total).
        if (e.attempted) return;
        this.#countDrop(QUEUE_DESTINATION, e.reason);
        if (e.copy.destination !== '') this.#countDrop(e.copy.destination, e.reason);
        return;
      default:
        return;
    }
  }

  #countDrop(destination: string, reason: DropReason): void {
    let byReason = this.#dropped.get(destination);
    if (!byReason) {
      byReason = new Map();
      this.#dropped.set(destination, byReason);
    }
    byReason.set(reason, (byReason.get(reason) ?? 0) + 1);
  }

  /** Count one decision: for a journaled copy call it once per policy of the copy. */
  decision(policy: string, outcome: JournalOutcome, count = 1): void {
    if (!(count > 0)) return;
    this.#decisions.inc({ policy: policy === '' ? NO_POLICY : policy, outcome }, count);
  }

  /** How long the MTA waited for one end-of-body reply, in seconds. */
  observeEob(seconds: number): void {
    if (Number.isFinite(seconds) && seconds >= 0) this.#eob.observe(seconds);
  }

  /** Time `fn` (one message's journaling) with the monotonic clock and observe it, even when it throws. */
  timeJournal<T>(fn: () => T): T {
    const start = process.hrtime.bigint();
    try {
      return fn();
    } finally {
      const seconds = Number(process.hrtime.bigint() - start) / 1e9;
      if (Number.isFinite(seconds) && seconds >= 0) this.#journal.observe(seconds);
    }
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  /** The Prometheus text exposition of every metric. */
  async metricsText(): Promise<string> {
    const snap = this.#queueSource();
    this.#scrapeQueue = snap;
    try {
      return await this.registry.metrics();
    } finally {
      if (this.#scrapeQueue === snap) this.#scrapeQueue = undefined;
    }
  }

  #queue(): QueueSnapshot {
    return this.#scrapeQueue ?? this.#queueSource();
  }
}
