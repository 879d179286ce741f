/**
 * The composition root: end-of-body → the Journaler (policy, journal copies) → forwarder queue.
 * Wiring and lifecycle only. Whatever happens to a copy, the milter's reply always lets the
 * original message go on.
 */
import type { Config } from './config';
import { Journaler } from './journaler';
import { Forwarder, type ForwarderOptions, type CopyEvent } from './forwarder';
import { CONTENT_FREE_WANTS, JOURNAL_WANTS, startMilterServer, type MilterServer } from './milter';
import type { CapturedMessage } from './message';
import type { Logger } from './util/logger';
import { systemClock, type Clock } from './util/clock';
import { describeError } from './util/errors';
import {
  CopyTracker,
  StatusMetrics,
  buildStatusJson,
  startStatusServer,
  type QueueSnapshot,
} from './status';
import * as fs from 'node:fs';
import { VERSION } from './version';


export interface AppDeps {
  logger: Logger;
  clock?: Clock;
  /** Extra observers of every copy's life (status, tracking, tests). */
  onCopyEvent?: (e: CopyEvent) => void;
  /** Overrides for tests: DNS servers for MX lookups, TLS server name. */
  forwarderOverrides?: Partial<ForwarderOptions>;
  /** Called with every journal copy built, before it is offered (tests read the bytes). */
  onJournalBuilt?: (copy: { id: string; intakeAddress: string; raw: Buffer }) => void;
}

/** Forwarder settings from the effective [tdc] settings. */
export function forwarderOptionsFrom(config: Config, overrides: Partial<ForwarderOptions> = {}): ForwarderOptions {
  const t = config.tdc;
  const tlsCa = t.tlsCaFile ? [fs.readFileSync(t.tlsCaFile)] : undefined;
  return {
    relay: t.relay,
    tlsCa,
    maxQueueAge: t.maxQueueAge,
    retryDelay: t.retryDelay,
    queueMaxMessages: t.queueMaxMessages,
    queueMaxBytes: t.queueMaxBytes,
    minConnections: t.minConnections,
    maxConnections: t.maxConnections,
    messagesPerConnection: t.messagesPerConnection,
    connectTimeout: t.connectTimeout,
    commandTimeout: t.commandTimeout,
    heloName: config.milter.hostname,
    ...overrides,
  };
}

export class TdcApp {
  #config: Config;
  readonly #deps: AppDeps;
  readonly #clock: Clock;
  readonly forwarder: Forwarder;
  readonly tracker = new CopyTracker();
  readonly metrics: StatusMetrics;
  readonly startedAt: number;
  #milter: MilterServer | undefined;
  #status: { address: string; close(): Promise<void> } | undefined;
  readonly #journaler: Journaler;

  private constructor(config: Config, deps: AppDeps) {
    this.#config = config;
    this.#deps = deps;
    this.#clock = deps.clock ?? systemClock;
    this.startedAt = this.#clock.now();
    this.forwarder = new Forwarder(forwarderOptionsFrom(config, deps.forwarderOverrides), {
      logger: deps.logger,
      clock: this.#clock,
      onEvent: (e) => {
        this.tracker.record(e);
        deps.onCopyEvent?.(e);
      },
    });
    this.metrics = new StatusMetrics({
      queue: () => this.queueSnapshot(),
      milter: () => this.milter.stats(),
      processMetrics: true,
    });
    this.#journaler = new Journaler({
      logger: deps.logger,
      clock: this.#clock,
      config: () => this.#config,
      sink: (copy, minBytes, build) => {
        this.tracker.noteCopy({ id: copy.id, queueId: copy.queueId, messageId: copy.messageId, intakeAddress: copy.intakeAddress });
        return this.forwarder.offerBuilt(copy, minBytes, build);
      },
      // StatusMetrics's label type does not list 'skipped_header' yet (lib/status is another
      // engineer's); prom-client takes any label value, so the decision is counted as it is.
      decision: (policy, decision, count) => (this.metrics.decision as (p: string, d: string, n?: number) => void)(policy, decision, count),
      ...(deps.onJournalBuilt ? { onJournalBuilt: deps.onJournalBuilt } : {}),
    });
  }

  queueSnapshot(): QueueSnapshot {
    return { total: this.forwarder.counters(), byDomain: this.forwarder.countersByDomain() };
  }

  /** The status endpoint's address, or undefined when it is off. */
  get statusAddress(): string | undefined {
    return this.#status?.address;
  }

  /** Start the milter listener and the forwarder with `config`. */
  static async start(config: Config, deps: AppDeps): Promise<TdcApp> {
    const app = new TdcApp(config, deps);
    const m = config.milter;
    app.#milter = await startMilterServer({
      listen: m.listen,
      socketMode: m.socketMode,
      socketGroup: m.socketGroup,
      logger: deps.logger,
      maxMessageBytes: m.maxMessageSize,
      onMessage: (msg) => app.metrics.timeJournal(() => app.handleMessage(msg)),
      onEobReplied: (seconds) => app.metrics.observeEob(seconds),
      // Journaling off: ask the MTA for no content at all (read at each new milter connection).
      wants: () => (app.#config.tdc.enabled ? JOURNAL_WANTS : CONTENT_FREE_WANTS),
    });
    if (m.statusListen !== 'no') {
      try {
        app.#status = await startStatusServer({
          listen: m.statusListen,
          logger: deps.logger,
          metrics: app.metrics,
          tracker: app.tracker,
          status: () => app.statusJson(),
        });
      } catch (err) {
        // Mail handling must not depend on the status port.
        deps.logger.error(`status endpoint not started: ${describeError(err)}`);
      }
    }
    deps.logger.info(
      `journaling ${config.tdc.enabled ? `on, global intake ${config.tdc.intakeAddress || '(none)'}` : 'off'}; ${config.policies.length} polic${config.policies.length === 1 ? 'y' : 'ies'}`,
    );
    return app;
  }

  get config(): Config {
    return this.#config;
  }

  get milter(): MilterServer {
    if (!this.#milter) throw new Error('milter not started');
    return this.#milter;
  }

  statusJson(): ReturnType<typeof buildStatusJson> {
    return buildStatusJson({
      version: VERSION,
      startedAt: this.startedAt,
      now: this.#clock.now(),
      milterListen: this.milter.listenAddress,
      statusListen: this.#status?.address ?? 'no',
      journaling: this.#config.tdc.enabled,
      intakeAddress: this.#config.tdc.intakeAddress,
      queue: this.queueSnapshot(),
      milter: this.milter.stats(),
      tracking: this.tracker,
      pid: process.pid,
    });
  }

  /** Settings for the next message. The listener itself is not moved: that needs a restart. */
  reload(config: Config): void {
    const old = this.#config;
    if (config.milter.listen !== old.milter.listen) {
      this.#deps.logger.warn(`reload: listen changed to ${config.milter.listen}; restart the daemon to move the listener`);
    }
    const logKeys = ['logLevel', 'logFormat', 'logFile', 'syslogSocket'] as const;
    if (logKeys.some((k) => config.milter[k] !== old.milter[k])) {
      this.#deps.logger.warn('reload: log settings changed; they take effect when the daemon restarts');
    }
    if (config.milter.statusListen !== old.milter.statusListen) {
      this.#deps.logger.warn(`reload: status_listen changed to ${config.milter.statusListen}; restart the daemon to move it`);
    }
    this.forwarder.reconfigure(forwarderOptionsFrom(config, this.#deps.forwarderOverrides));
    this.#config = config;
    this.#deps.logger.info(`configuration reloaded; journaling ${config.tdc.enabled ? 'on' : 'off'}`);
  }

  /** End-of-body: decide and enqueue the copies (the Journaler's job). Never throws. */
  handleMessage(msg: CapturedMessage): void {
    this.#journaler.handle(msg);
  }

  /** SIGTERM: stop taking mail, give queued copies `drainMs` to go, then close everything. */
  async stop(drainMs: number): Promise<void> {
    const started = this.#clock.now();
    // Sessions in progress may still hand us messages; let them finish first (bounded).
    await this.#milter?.close(Math.min(drainMs, 5000));
    await this.forwarder.drain(Math.max(0, drainMs - (this.#clock.now() - started)));
    await this.forwarder.close();
    await this.#status?.close();
  }
}
