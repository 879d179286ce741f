/**
 * The composition root: end-of-body → the Journaler (policy, journal copies) → forwarder queue.
 * Wiring and lifecycle only. Whatever happens to a copy, the milter's reply always lets the
 * original message go on.
 */
import type { Config } from './config';
import { Journaler } from './journaler';
import { Forwarder, type ForwarderOptions, type ForwarderEvent } from './forwarder';
import { CONTENT_FREE_WANTS, JOURNAL_WANTS, startMilterServer, type MilterServer } from './milter';
import type { CapturedMessage } from './message';
import type { Logger } from './util/logger';
import { systemClock, type Clock } from './util/clock';
import { describeError } from './util/errors';
import {
  CopyTracker,
  HostDownState,
  MailLog,
  IntakeHealth,
  RateHistory,
  StatusMetrics,
  buildStatusJson,
  renderStatusPage,
  startMetricsServer,
  startStatusServer,
  type QueueSnapshot,
  type Readiness,
} from './status';
import { VERSION } from './version';
import { formatListenAddress } from './util/net-address';
import { formatNetworks } from './util/ip-network';
import type { ConfigResult } from './config';


export interface AppDeps {
  logger: Logger;
  clock?: Clock;
  /** An extra observer of the forwarder's event stream (tests). */
  onForwarderEvent?: (e: ForwarderEvent) => void;
  /** Overrides for tests: DNS servers for MX lookups, TLS server name. */
  forwarderOverrides?: Partial<ForwarderOptions>;
  /** The listening socket systemd passed (socket activation); served instead of binding `listen`. */
  inheritedListener?: { fd: number; name?: string | undefined };
  /** Called with every journal copy built, before it is offered (tests read the bytes). */
  onJournalBuilt?: (copy: { id: string; intakeAddress: string; raw: Buffer }) => void;
}

/** Forwarder settings from the effective [tdc] settings. */
export function forwarderOptionsFrom(config: Config, overrides: Partial<ForwarderOptions> = {}): ForwarderOptions {
  const t = config.tdc;
  return {
    relay: t.relay,
    // Read when the file was loaded: an unreadable CA file is the loader's refusal, never a throw here.
    tlsCa: t.tlsCa !== undefined ? [Buffer.from(t.tlsCa, 'utf8')] : undefined,
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
  readonly hosts = new HostDownState();
  readonly metrics: StatusMetrics;
  readonly health = new IntakeHealth();
  /** Samples for the status page's charts: every 10 s, 10 minutes. */
  readonly rates = new RateHistory();
  readonly startedAt: number;
  #milter: MilterServer | undefined;
  #status: { address: string; close(): Promise<void> } | undefined;
  readonly #journaler: Journaler;
  #metricsListener: { address: string; close(): Promise<void> } | undefined;
  #sampler: { cancel(): void } | undefined;

  private constructor(config: Config, deps: AppDeps) {
    this.#config = config;
    this.#deps = deps;
    this.#clock = deps.clock ?? systemClock;
    this.startedAt = this.#clock.now();
    this.metrics = new StatusMetrics({
      queue: () => this.queueSnapshot(),
      milter: () => this.milter.stats(),
      processMetrics: true,
      version: VERSION,
      startedAt: this.startedAt,
      limits: () => ({ queueMaxMessages: this.#config.tdc.queueMaxMessages, queueMaxBytes: this.#config.tdc.queueMaxBytes }),
    });
    // One stream; its subscribers: the mail log, `track`, the metrics and readiness, tophosts' host-down marks (and a test's).
    const mailLog = new MailLog(deps.logger);
    this.forwarder = new Forwarder(forwarderOptionsFrom(config, deps.forwarderOverrides), {
      logger: deps.logger,
      clock: this.#clock,
      onEvent: (e) => {
        mailLog.observe(e);
        this.tracker.record(e);
        this.observeForwarderEvent(e);
        this.hosts.observe(e);
        deps.onForwarderEvent?.(e);
      },
    });
    this.#journaler = new Journaler({
      logger: deps.logger,
      clock: this.#clock,
      config: () => this.#config,
      sink: (copy, minBytes, build) => this.forwarder.offerBuilt(copy, minBytes, build),
      decision: (policy, decision, count) => this.metrics.decision(policy, decision, count),
      ...(deps.onJournalBuilt ? { onJournalBuilt: deps.onJournalBuilt } : {}),
    });
  }

  /** One event of the forwarder's stream, for metrics and readiness. */
  observeForwarderEvent(e: ForwarderEvent): void {
    this.metrics.observeForwarderEvent(e);
    this.health.observe(e);
  }

  /** `/readyz`: not ready while every attempt has failed for ready_failing_time, or the queue is full. */
  readiness(): Readiness {
    const q = this.forwarder.counters();
    const t = this.#config.tdc;
    return this.health.readiness({
      now: this.#clock.now(),
      failingTime: this.#config.milter.readyFailingTime,
      queue: { messages: q.activeRecipients, bytes: q.queuedBytes },
      limits: { maxMessages: t.queueMaxMessages, maxBytes: t.queueMaxBytes },
    });
  }

  /** The status page's HTML. */
  statusPage(): string {
    return renderStatusPage({
      status: this.statusJson(),
      readiness: this.readiness(),
      points: this.rates.points(RateHistory.take(this.#clock.now(), this.forwarder.counters(), this.milter.stats())),
      recent: this.tracker.recent(25),
      intervalSeconds: this.rates.intervalMs / 1000,
    });
  }

  #sampleRates(): void {
    this.rates.sample(this.#clock.now(), this.forwarder.counters(), this.milter.stats());
    this.#sampler = this.#clock.setTimer(this.rates.intervalMs, () => this.#sampleRates());
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
      ...(deps.inheritedListener !== undefined ? { inherited: deps.inheritedListener } : {}),
      logger: deps.logger,
      maxMessageBytes: m.maxMessageSize,
      onMessage: (msg) => app.metrics.timeJournal(() => app.handleMessage(msg)),
      onEobReplied: (seconds) => app.metrics.observeEob(seconds),
      // Journaling off: ask the MTA for no content at all (read at each new milter connection).
      wants: () => (app.#config.tdc.enabled ? JOURNAL_WANTS : CONTENT_FREE_WANTS),
    });
    // Mail handling must not depend on the status or metrics port: a listener that cannot start is logged.
    const optional = async <T>(what: string, start: () => Promise<T>): Promise<T | undefined> => {
      try {
        return await start();
      } catch (err) {
        deps.logger.error(`${what} not started: ${describeError(err)}`);
        return undefined;
      }
    };
    if (m.statusListen !== 'no') {
      app.#status = await optional('status endpoint', () => startStatusServer({
        listen: m.statusListen,
        logger: deps.logger,
        metrics: app.metrics,
        tracker: app.tracker,
        status: () => app.statusJson(),
        readiness: () => app.readiness(),
        page: () => app.statusPage(),
      }));
    }
    if (m.metricsListen !== 'no') {
      app.#metricsListener = await optional('metrics listener', () => startMetricsServer({
        listen: m.metricsListen,
        allow: m.metricsAllow,
        logger: deps.logger,
        metrics: app.metrics,
        readiness: () => app.readiness(),
      }));
    }
    app.#sampleRates();
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
      isDown: (d) => this.hosts.isDown(d),
    });
  }

  /**
   * SIGHUP: load the file again and apply it. Whatever goes wrong (a refused file, an unreadable CA
   * bundle, anything thrown) is ONE error line, `reload refused: …; old settings kept`, the old settings
   * stay and `tdc_config_last_reload_successful` drops to 0. Never throws. True when applied.
   */
  reloadFrom(load: () => ConfigResult): boolean {
    let refused: string;
    try {
      const next = load();
      if (next.ok) {
        this.reload(next.config);
        this.metrics.noteReload(true, this.#clock.now());
        return true;
      }
      refused = next.errors.join('; ');
    } catch (err) {
      refused = describeError(err);
    }
    this.metrics.noteReload(false, this.#clock.now());
    this.#deps.logger.error(`reload refused: ${refused}; old settings kept`);
    return false;
  }

  /** Settings for the next message. The listener itself is not moved: that needs a restart. */
  reload(config: Config): void {
    const old = this.#config;
    const listen = formatListenAddress(config.milter.listen);
    if (listen !== formatListenAddress(old.milter.listen)) {
      this.#deps.logger.warn(this.#deps.inheritedListener === undefined
        ? `reload: listen changed to ${listen}; restart the daemon to move the listener`
        : `reload: listen changed to ${listen}, but the socket comes from systemd: change ListenStream= in tdc-milter.socket instead`);
    }
    const logKeys = ['logLevel', 'logFormat', 'logFile', 'syslogSocket'] as const;
    if (logKeys.some((k) => config.milter[k] !== old.milter[k])) {
      this.#deps.logger.warn('reload: log settings changed; they take effect when the daemon restarts');
    }
    if (config.milter.statusListen !== old.milter.statusListen) {
      this.#deps.logger.warn(`reload: status_listen changed to ${config.milter.statusListen}; restart the daemon to move it`);
    }
    if (config.milter.metricsListen !== old.milter.metricsListen || formatNetworks(config.milter.metricsAllow) !== formatNetworks(old.milter.metricsAllow)) {
      this.#deps.logger.warn('reload: metrics_listen or metrics_allow changed; they take effect when the daemon restarts');
    }
    this.forwarder.reconfigure(forwarderOptionsFrom(config, this.#deps.forwarderOverrides));
    this.#config = config;
    this.#deps.logger.info(`configuration reloaded; journaling ${config.tdc.enabled ? 'on' : 'off'}`);
  }

  /** End-of-body: decide and enqueue the copies (the Journaler's job). Never throws. */
  handleMessage(msg: CapturedMessage): void {
    this.#journaler.handle(msg);
  }

  /**
   * SIGTERM: stop accepting milter connections, serve the open ones until the MTA closes them,
   * then give queued copies the rest of `drainMs` to go, then close everything.
   */
  async stop(drainMs: number): Promise<void> {
    const started = this.#clock.now();
    // Cutting an open milter connection would send the rest of that SMTP session's mail on
    // unjournaled (milter_default_action = accept), so the MTA decides when it ends, within drain_time.
    const open = this.#milter?.stats().activeSessions ?? 0;
    const closed = this.#milter?.close(drainMs); // stops accepting at once
    if (open > 0) {
      this.#deps.logger.info(`${open} milter connection(s) open: serving them until the MTA closes them, for up to ${drainMs / 1000}s (drain_time)`);
    }
    await closed;
    await this.forwarder.drain(Math.max(0, drainMs - (this.#clock.now() - started)));
    await this.forwarder.close();
    this.#sampler?.cancel();
    await this.#status?.close();
    await this.#metricsListener?.close();
  }
}
