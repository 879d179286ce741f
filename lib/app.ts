/**
 * The composition root: end-of-body → direction and policy → journal copies → forwarder queue.
 * Only this module sees milter, policy, journal and forwarder together. Whatever happens to a copy,
 * the milter's reply always lets the original message go on.
 */
import type { Config } from './config';
import { buildJournalParts } from './journal';
import { planJournal } from './policy';
import { Forwarder, type ForwarderOptions, type ForwarderEvent } from './forwarder';
import { CONTENT_FREE_WANTS, JOURNAL_WANTS, startMilterServer, type MilterServer } from './milter';
import { findHeader, type CapturedMessage } from './message';
import type { Logger } from './util/logger';
import { systemClock, type Clock } from './util/clock';
import { describeError } from './util/errors';
import {
  CopyTracker,
  HostDownState,
  MailLog,
  StatusMetrics,
  NO_POLICY,
  buildStatusJson,
  startStatusServer,
  type QueueSnapshot,
} from './status';
import * as fs from 'node:fs';
import { VERSION } from './version';


export interface AppDeps {
  logger: Logger;
  clock?: Clock;
  /** An extra observer of the forwarder's event stream (tests). */
  onForwarderEvent?: (e: ForwarderEvent) => void;
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
  readonly hosts = new HostDownState();
  readonly metrics: StatusMetrics;
  readonly startedAt: number;
  #milter: MilterServer | undefined;
  #status: { address: string; close(): Promise<void> } | undefined;
  #fallbackIds = 0;

  private constructor(config: Config, deps: AppDeps) {
    this.#config = config;
    this.#deps = deps;
    this.#clock = deps.clock ?? systemClock;
    this.startedAt = this.#clock.now();
    this.metrics = new StatusMetrics({
      queue: () => this.queueSnapshot(),
      milter: () => this.milter.stats(),
      processMetrics: true,
    });
    // One stream, three subscribers: the mail log, `track` and the metrics (plus a test's).
    const mailLog = new MailLog(deps.logger);
    this.forwarder = new Forwarder(forwarderOptionsFrom(config, deps.forwarderOverrides), {
      logger: deps.logger,
      clock: this.#clock,
      onEvent: (e) => {
        mailLog.observe(e);
        this.tracker.record(e);
        this.metrics.observe(e);
        this.hosts.observe(e);
        deps.onForwarderEvent?.(e);
      },
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
      isDown: (d) => this.hosts.isDown(d),
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

  /**
   * End-of-body: decide and enqueue the copies. Runs synchronously right after the MTA got its
   * end-of-body reply; it must stay fast (other sessions wait) and never throw (the milter guards it anyway).
   */
  handleMessage(msg: CapturedMessage): void {
    const log = this.#deps.logger;
    const config = this.#config;
    const qid = msg.queueId || this.#fallbackQueueId();
    try {
      if (msg.oversized) {
        this.metrics.decision(NO_POLICY, 'oversized');
        log.warn(`${qid}: not journaled: message of ${msg.bodyBytes} body bytes is over max_message_size (${config.milter.maxMessageSize})`);
        return;
      }
      if (msg.withoutContent === true && config.tdc.enabled) {
        this.metrics.decision(NO_POLICY, 'not_journaled');
        // A warning: mail that should be journaled is not (until the MTA opens new milter connections).
        log.warn(`${qid}: not journaled: its milter connection began while journaling was off, so the MTA sent no content; the MTA's next connection will`);
        return;
      }
      const plan = planJournal(msg, config);
      if (plan.reason !== undefined) {
        this.metrics.decision(NO_POLICY, 'not_journaled');
        // With journaling off the line says nothing new per message and costs a fifth of the
        // daemon's time (bench): keep it for debug. Every other reason is news for the admin.
        if (config.tdc.enabled) log.info(`${qid}: not journaled: ${plan.reason}`);
        else log.debug(`${qid}: not journaled: ${plan.reason}`);
      }
      for (const s of plan.skipped) {
        this.metrics.decision(s.policy, 'skipped', s.recipients.length);
        log.info(`${qid}: not journaled for ${s.recipients.length} recipient(s) of policy ${s.policy}: ${s.reason}`);
      }
      if (plan.copies.length === 0) return;
      const messageId = findHeader(msg, 'Message-ID') ?? '';
      const date = new Date(this.#clock.now());
      // Every copy holds the whole original: a lower bound of its size, to skip copies that cannot be queued.
      const minBytes = msg.body.reduce((n, b) => n + b.length, 0);
      plan.copies.forEach((copy, i) => {
        const id = `${qid}.${i + 1}`;
        for (const p of copy.policies) this.metrics.decision(p, 'journaled');
        log.info(`${qid}: journal copy ${id} for ${copy.recipients.length} recipient(s) (policy ${copy.policies.join(', ')}) to ${copy.intakeAddress}`);
        this.forwarder.offerBuilt({ id, queueId: qid, messageId, intakeAddress: copy.intakeAddress }, minBytes, () => {
          const raw = buildJournalParts({
            message: msg,
            intakeAddress: copy.intakeAddress,
            recipients: copy.recipients,
            policies: copy.policies,
            hostname: config.milter.hostname,
            date,
            copyId: id,
            remoteIpHeader: config.tdc.remoteIpHeader,
          });
          this.#deps.onJournalBuilt?.({ id, intakeAddress: copy.intakeAddress, raw: Buffer.concat(raw) });
          return raw;
        });
      });
    } catch (err) {
      this.metrics.decision(NO_POLICY, 'error');
      // A bug of ours costs at most this copy, never the original.
      log.error(`${qid}: journal copy not made: internal error: ${describeError(err)}`);
    }
  }

  #fallbackQueueId(): string {
    this.#fallbackIds += 1;
    return `NOQUEUE-${this.#clock.now().toString(36)}-${this.#fallbackIds}`;
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
