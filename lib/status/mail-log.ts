/**
 * The mail log in the gateway's words: each forwarder event becomes the gateway's lines for it
 * (receiver-facts §3, word for word, `TDC:` only where it has one) plus ours in the same style.
 * `mailLogLines` is pure; `MailLog` writes them. Imports only the forwarder's types (and the queue's
 * name and attempt count from its types.ts, which has no code) and util.
 */
import type { CopyEvent, DeliveryResult, ForwarderEvent } from '../forwarder';
import { MAX_ATTEMPTS, QUEUE_NAME as QUEUE } from '../forwarder/types';
import type { LogLevel, Logger } from '../util/logger';
import { SETD } from './tracker';

export interface MailLogLine {
  level: LogLevel;
  text: string;
  /** False: the gateway writes this line without `TDC: `. */
  prefix: boolean;
}

const info = (text: string, prefix = true): MailLogLine => ({ level: 'info', text, prefix });
const warning = (text: string): MailLogLine => ({ level: 'warning', text, prefix: true });

/**
 * A reply the gateway's way: `('550', ['5.1.1 no such user'])` — the 3-digit code ('000' when no
 * server said anything) and the reply's lines without it.
 */
export function replyTuple(reply: string): string {
  const lines = reply === '' ? [] : reply.split(' / ');
  const code = /^(\d{3})[ -]/.exec(lines[0] ?? '')?.[1] ?? '000';
  const texts = lines.map((l) => (code !== '000' ? l.replace(/^\d{3}[ -]/, '') : l)).map((l) => `'${l}'`);
  return `('${code}', [${texts.join(', ')}])`;
}

/** `5.1.2 - Bad destination host ('000', ['DNS Hard Error looking up x (MX) : NXDomain'])`. */
export function bounceText(r: DeliveryResult): string {
  return `${r.dsn} - ${r.detail} ${replyTuple(r.reply)}`;
}

/** What the gateway writes when a copy leaves the queue undelivered after an attempt: a hard bounce. */
function hardBounceLines(e: CopyEvent, r: DeliveryResult): MailLogLine[] {
  const mid = e.copy.mid;
  const failed = r.kind === 'tls'
    ? `MID ${mid} delivery failed to ${SETD}:TLS Error.`
    : `MID ${mid} delivery failed to ${SETD}: Hard Bounced.`;
  return [
    info(`Hard bounced - ${bounceText(r)}`),
    info(failed),
    info(`Bounced: DCID ${r.dcid ?? 0} MID ${mid} to RID 0 - Bounced by destination server with response: ${bounceText(r)}`, false),
    info(`Message finished MID ${mid} done`, false),
  ];
}

/** The result a copy removed by the queue (not by the intake) bounces with. */
function removalResult(e: Extract<CopyEvent, { type: 'dropped' }>): DeliveryResult {
  const last = e.last;
  if (e.reason === 'too_old') {
    // The server's last word if it said one, else what the queue saw (an attempt cut off at the deadline).
    return {
      outcome: 'hard', dsn: '5.4.7', detail: 'Delivery expired (message too old)', reply: last?.reply || e.detail,
      phase: last?.phase ?? 'local', ...(last?.dcid !== undefined ? { dcid: last.dcid } : {}),
    };
  }
  // Retries spent: the last failure, now permanent (5.x.x), with the server's own reply kept.
  if (last) return { ...last, outcome: 'hard', dsn: last.dsn.replace(/^4\./, '5.'), reply: last.reply || e.detail };
  return { outcome: 'hard', dsn: '5.3.2', detail: 'Delivery stopped (shutting down)', reply: e.detail, phase: 'local' };
}

/** The mail-log lines of one event (none for events the gateway does not log, e.g. `attempt`). */
export function mailLogLines(e: ForwarderEvent): MailLogLine[] {
  switch (e.type) {
    case 'enqueued': {
      const c = e.copy;
      return [
        info(`MID ${c.mid} with Message-ID '${c.messageId}' enqueued for forwarding to ${SETD} to the message intake address ${c.intakeAddress}`),
        info(`MID ${c.mid} copy ${c.copyId} of queue id ${c.queueId} ready ${c.bytes} bytes`),
      ];
    }
    case 'attempt':
      return [];
    case 'delivery_start':
      return [info(`Delivery start DCID ${e.dcid} MID ${e.copy.mid}`)];
    case 'delivered': {
      const mid = e.copy.mid;
      return [
        info(`Message done DCID ${e.result.dcid ?? 0} MID ${mid} to RID [0] [('${e.result.reply}')]`),
        info(`MID ${mid} successfully delivered for scanning with ${SETD}.`),
        info(`Message finished MID ${mid} done`, false),
      ];
    }
    case 'soft_bounce': {
      const r = e.result;
      const secs = Number((e.retryInMs / 1000).toFixed(3));
      return [warning(`Delayed: DCID ${r.dcid ?? 0} MID ${e.copy.mid} to RID 0 - ${bounceText(r)}; retry in ${secs} s (attempt ${e.attempt} of ${MAX_ATTEMPTS})`)];
    }
    case 'hard_bounce':
      return hardBounceLines(e, e.result);
    case 'dropped': {
      const mid = e.copy.mid;
      if (!e.attempted) {
        // Names the copy: a copy refused at offer had no enqueued lines.
        const c = e.copy;
        return [warning(`MID ${mid} copy ${c.copyId} of queue id ${c.queueId} dropped from ${QUEUE}: ${e.detail}`), info(`Message finished MID ${mid} aborted`, false)];
      }
      return [warning(`MID ${mid} removed from ${QUEUE}: ${e.detail}`), ...hardBounceLines(e, removalResult(e))];
    }
    case 'connection_opened':
      return [info(`New SMTP DCID ${e.dcid} interface ${e.localAddress || '0.0.0.0'} address ${e.ip} port ${e.port}`)];
    case 'tls_established':
      return [info(`DCID ${e.dcid} TLS success protocol ${e.protocol} cipher ${e.cipher}`, false)];
    case 'connection_error':
      return [info(`Connection Error: DCID ${e.dcid} domain: ${QUEUE} IP: ${e.ip} port: ${e.port} details: ${e.details} interface: ${e.localAddress || '0.0.0.0'} reason: ${e.reason}`)];
    case 'connection_closed':
      return [info(`DCID ${e.dcid} close`, false)];
    case 'dns_error':
      return [info(`DNS Error ${e.domain} ${e.rrtype} - ${e.error}`, false)];
  }
}

/** The subscriber: writes each event's lines to the logger. */
export class MailLog {
  readonly #logger: Logger;

  constructor(logger: Logger) {
    this.#logger = logger;
  }

  readonly observe = (e: ForwarderEvent): void => {
    for (const line of mailLogLines(e)) {
      const options = line.prefix ? undefined : { prefix: false };
      if (line.level === 'warning') this.#logger.warn(line.text, options);
      else if (line.level === 'error') this.#logger.error(line.text, options);
      else if (line.level === 'debug') this.#logger.debug(line.text, options);
      else this.#logger.info(line.text, options);
    }
  };
}
