/**
 * TEMPORARY: nodemailer's SmtpDelivery behind the DeliveryAgent contract until smtp-agent.ts lands;
 * then delete it with smtp-delivery.ts and its helpers. Classifies thrown errors (classify.ts) into
 * typed results, reports DNS errors as events, ignores `demand`. Imports util and this folder only.
 */
import type { Clock } from '../util/clock';
import type { Logger } from '../util/logger';
import { classifyFailure, enhancedStatus } from './classify';
import type { AgentStats, DeliveryAgent, DeliveryContext, DeliveryPhase, DeliveryResult, QueuedCopy } from './delivery-agent';
import type { AgentHooks } from './forwarder';
import type { DnsResolverLike } from './route';
import { SmtpDelivery, dcidOf } from './smtp-delivery';
import { domainOf, journalBytes, type ForwarderOptions } from './types';

/** The gateway's words for a DNS error code. */
const DNS_WORDS: Record<string, string> = {
  ENOTFOUND: 'NXDomain', NULLMX: 'Null MX', ESERVFAIL: 'ServFail', ETIMEOUT: 'Timeout', ENODATA: 'No address', EREFUSED: 'Refused',
};

function field(err: unknown, name: string): unknown {
  return typeof err === 'object' && err !== null ? (err as Record<string, unknown>)[name] : undefined;
}

export class NodemailerAgent implements DeliveryAgent<ForwarderOptions> {
  readonly #smtp: SmtpDelivery;
  readonly #hooks: AgentHooks;
  readonly #clock: Clock;

  constructor(options: ForwarderOptions, deps: AgentHooks & { logger: Logger; clock: Clock; resolver?: DnsResolverLike }) {
    this.#hooks = deps;
    this.#clock = deps.clock;
    this.#smtp = new SmtpDelivery(options, deps);
  }

  async deliver(copy: QueuedCopy, ctx: DeliveryContext): Promise<DeliveryResult> {
    try {
      const sent = await this.#smtp.deliver(copy, ctx);
      const reply = sent.response.trim();
      const r: DeliveryResult = { outcome: 'delivered', dsn: enhancedStatus(reply, 250), reply, detail: 'delivered', phase: 'message' };
      if (sent.dcid !== undefined) r.dcid = sent.dcid;
      return r;
    } catch (err) {
      return this.#failed(copy, err);
    }
  }

  demand(): void {
    // nodemailer's pools open connections per send; the new agent keeps `connections` open.
  }

  stats(): AgentStats {
    const c = this.#smtp.connections();
    return { connections: c.total, byDomain: c.byDomain };
  }

  reconfigure(options: ForwarderOptions): void {
    this.#smtp.reconfigure(options);
  }

  close(): Promise<void> {
    return this.#smtp.close();
  }

  #failed(copy: QueuedCopy, err: unknown): DeliveryResult {
    const c = classifyFailure(err);
    const response = field(err, 'response');
    let reply = typeof response === 'string' ? response.trim() : '';
    let detail = c.text;
    let phase: DeliveryPhase = 'message';
    if (c.cls === 'tls') {
      detail = 'TLS Error';
      phase = 'tls';
      if (reply === '') reply = c.detail;
    } else if (c.cls === 'dns' || c.cls === 'dns_hard') {
      phase = 'route';
      const message = c.detail;
      const isMx = message.startsWith('MX lookup') || message.includes('null MX');
      const code = field(err, 'dnsCode');
      const word = (typeof code === 'string' ? DNS_WORDS[code] : undefined) ?? 'ServFail';
      const name = isMx ? domainOf(copy.intakeAddress) : (/address of (\S+):/.exec(message)?.[1] ?? domainOf(copy.intakeAddress));
      const rrtype = isMx ? 'MX' : 'A';
      this.#hooks.onEvent({
        type: 'dns_error', at: this.#clock.now(), domain: name, rrtype, error: word, hard: c.cls === 'dns_hard',
        copy: {
          copyId: copy.id, mid: copy.mid, queueId: copy.queueId, messageId: copy.messageId, intakeAddress: copy.intakeAddress,
          destination: domainOf(copy.intakeAddress), bytes: journalBytes(copy.raw),
        },
      });
      reply = `DNS ${c.cls === 'dns_hard' ? 'Hard' : 'Soft'} Error looking up ${name} (${rrtype}) : ${word}`;
    } else if (c.cls === 'network') {
      phase = 'connect';
      detail = c.status === '4.4.1' ? 'connection timed out' : 'connection failed';
      if (reply === '') reply = c.detail;
    } else if (reply === '') {
      reply = c.detail;
    }
    const r: DeliveryResult = { outcome: c.retry ? 'soft' : 'hard', dsn: c.status, reply, detail, kind: c.cls, phase };
    if (c.cls === 'aborted') r.outcome = 'soft';
    const dcid = dcidOf(err);
    if (dcid !== undefined) r.dcid = dcid;
    return r;
  }
}
