/**
 * Builders of the forwarder's copy events for the status specs (tracker, track format, endpoint):
 * the whole fact of each event, with short defaults.
 */
import type { CopyEvent, CopyFacts, DeliveryResult } from '../../lib/forwarder';

export function copyFacts(copyId: string, over: Partial<CopyFacts> = {}): CopyFacts {
  const intakeAddress = over.intakeAddress ?? 'j@intake.example';
  return {
    copyId, mid: 1000, queueId: copyId.replace(/\.\d+$/, ''), messageId: '', intakeAddress,
    destination: intakeAddress.slice(intakeAddress.lastIndexOf('@') + 1).toLowerCase(), bytes: 100, ...over,
  };
}

export const result = (outcome: DeliveryResult['outcome'], reply: string, dcid?: number, over: Partial<DeliveryResult> = {}): DeliveryResult => ({
  outcome, dsn: /^\d{3} (\d\.\d+\.\d+)/.exec(reply)?.[1] ?? (outcome === 'delivered' ? '2.0.0' : outcome === 'soft' ? '4.0.0' : '5.0.0'),
  reply, detail: outcome === 'delivered' ? 'delivered' : outcome === 'soft' ? 'Temporary failure at intake' : 'Rejected by intake',
  ...(outcome === 'delivered' ? {} : { kind: outcome === 'soft' ? 'smtp_4xx' as const : 'smtp_5xx' as const }),
  ...(dcid === undefined ? {} : { dcid }), phase: 'message', ...over,
});

/** Events of one copy, in order, at `at + offset`. */
export function lifeOf(copy: CopyFacts, at: number) {
  return {
    enqueued: (dt = 0): CopyEvent => ({ type: 'enqueued', at: at + dt, copy }),
    attempt: (dt: number, attempt = 1): CopyEvent => ({ type: 'attempt', at: at + dt, copy, attempt }),
    start: (dt: number, dcid: number, attempt = 1): CopyEvent => ({ type: 'delivery_start', at: at + dt, copy, dcid, attempt }),
    delivered: (dt: number, reply: string, dcid?: number, attempt = 1): CopyEvent => ({ type: 'delivered', at: at + dt, copy, attempt, result: result('delivered', reply, dcid) }),
    soft: (dt: number, reply: string, dcid?: number, retryInMs = 10_000): CopyEvent => ({ type: 'soft_bounce', at: at + dt, copy, attempt: 1, result: result('soft', reply, dcid), retryInMs }),
    hard: (dt: number, reply: string, dcid?: number, over: Partial<DeliveryResult> = {}): CopyEvent => ({ type: 'hard_bounce', at: at + dt, copy, attempt: 1, result: result('hard', reply, dcid, over) }),
    dropped: (dt: number, detail: string, attempted = false): CopyEvent => ({
      type: 'dropped', at: at + dt, copy, reason: attempted ? 'too_old' : 'queue_full', attempted, detail,
    }),
  };
}
