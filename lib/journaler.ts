/**
 * The journaling use case: a captured message → policy decisions (logged and counted) → one journal
 * copy per intake address, offered to a sink (the forwarder in the daemon, a fake in unit tests).
 * Imports message, config (types), policy, journal and forwarder (types); never milter, status or app.
 */
import type { Config } from './config';
import type { CopyIdentity } from './forwarder';
import { buildJournalParts, describeOriginal } from './journal';
import { findHeader, type CapturedMessage } from './message';
import { planJournal } from './policy';
import type { Clock } from './util/clock';
import { describeError } from './util/errors';
import type { Logger } from './util/logger';

/** The policy label of a decision made before any policy applied (the metrics' NO_POLICY). */
export const NO_POLICY = '(none)';

/**
 * What happened to a message for one policy; `skipped_header` is a skip_if_header rule (the
 * gateway journals only mail it will deliver), `skipped` a policy with tdc = no or without intake.
 */
export type JournalDecision = 'journaled' | 'skipped' | 'skipped_header' | 'not_journaled' | 'oversized' | 'error';

/** Takes a copy by name; builds its bytes only if it will be queued. False when refused. */
export type CopySink = (copy: CopyIdentity, minBytes: number, build: () => Buffer[]) => boolean;

export interface JournalerDeps {
  logger: Logger;
  clock: Clock;
  /** The settings in force now (they change on reload). */
  config: () => Config;
  sink: CopySink;
  /** Count one decision (once per policy of a journaled copy). */
  decision: (policy: string, decision: JournalDecision, count?: number) => void;
  /** Tests: every copy's bytes as built. */
  onJournalBuilt?: (copy: { id: string; intakeAddress: string; raw: Buffer }) => void;
}

export class Journaler {
  readonly #deps: JournalerDeps;
  #fallbackIds = 0;

  constructor(deps: JournalerDeps) {
    this.#deps = deps;
  }

  /**
   * Decide and offer the copies of one message. Runs right after the MTA got its end-of-body reply:
   * it must stay fast (other sessions wait) and never throws (a bug of ours costs the copy, never the original).
   */
  handle(msg: CapturedMessage): void {
    const { logger: log, decision } = this.#deps;
    const config = this.#deps.config();
    const qid = msg.queueId || this.#fallbackQueueId();
    try {
      if (msg.oversized) {
        decision(NO_POLICY, 'oversized');
        log.warn(`${qid}: not journaled: message of ${msg.bodyBytes} body bytes is over max_message_size (${config.milter.maxMessageSize})`);
        return;
      }
      if (msg.withoutContent === true && config.tdc.enabled) {
        decision(NO_POLICY, 'not_journaled');
        // A warning: mail that should be journaled is not (until the MTA opens new milter connections).
        log.warn(`${qid}: not journaled: its milter connection began while journaling was off, so the MTA sent no content; the MTA's next connection will`);
        return;
      }
      const plan = planJournal(msg, config);
      if (plan.reason !== undefined) {
        decision(NO_POLICY, 'not_journaled');
        // With journaling off the line says nothing new per message and costs a fifth of the
        // daemon's time (bench): keep it for debug. Every other reason is news for the admin.
        if (config.tdc.enabled) log.info(`${qid}: not journaled: ${plan.reason}`);
        else log.debug(`${qid}: not journaled: ${plan.reason}`);
      }
      for (const s of plan.skipped) {
        decision(s.policy, s.byHeader === true ? 'skipped_header' : 'skipped', s.recipients.length);
        log.info(`${qid}: not journaled for ${s.recipients.length} recipient(s) of policy ${s.policy}: ${s.reason}`);
      }
      if (plan.copies.length === 0) return;
      const messageId = findHeader(msg, 'Message-ID') ?? '';
      const date = new Date(this.#deps.clock.now());
      // The same for every copy: computed once.
      const original = describeOriginal(msg);
      // Every copy holds the whole original: a lower bound of its size, to skip copies that cannot be queued.
      const minBytes = msg.body.reduce((n, b) => n + b.length, 0);
      plan.copies.forEach((copy, i) => {
        const id = `${qid}.${i + 1}`;
        for (const p of copy.policies) decision(p, 'journaled');
        log.info(`${qid}: journal copy ${id} for ${copy.recipients.length} recipient(s) (policy ${copy.policies.join(', ')}) to ${copy.intakeAddress}`);
        const identity: CopyIdentity = { id, queueId: qid, messageId, intakeAddress: copy.intakeAddress, body: original.body };
        this.#deps.sink(identity, minBytes, () => {
          const raw = buildJournalParts({
            message: msg,
            intakeAddress: copy.intakeAddress,
            recipients: copy.recipients,
            policies: copy.policies,
            hostname: config.milter.hostname,
            date,
            copyId: id,
            remoteIpHeader: config.tdc.remoteIpHeader,
            original,
          });
          this.#deps.onJournalBuilt?.({ id, intakeAddress: copy.intakeAddress, raw: Buffer.concat(raw) });
          return raw;
        });
      });
    } catch (err) {
      decision(NO_POLICY, 'error');
      log.error(`${qid}: journal copy not made: internal error: ${describeError(err)}`);
    }
  }

  #fallbackQueueId(): string {
    this.#fallbackIds += 1;
    return `NOQUEUE-${this.#deps.clock.now().toString(36)}-${this.#fallbackIds}`;
  }
}
