/**
 * A bridge while the forwarder still emits its old `CopyEvent` (types.ts: `kind` + `detail` text):
 * turns one into the `ForwarderEvent` the metrics and readiness observe. Goes away when the queue
 * emits `ForwarderEvent`s itself. Imports only the *types* of the forwarder's contracts.
 */
import type { CopyEvent as LegacyCopyEvent } from '../forwarder';
import type { CopyFacts, DropReason, ForwarderEvent } from '../forwarder/events';

/** The drop reason of the old event's detail text (copy-queue.ts words), or undefined. */
export function legacyDropReason(detail: string): DropReason | undefined {
  if (detail.startsWith('queue full')) return 'queue_full';
  if (detail.startsWith('shutting down')) return 'shutting_down';
  if (detail.startsWith('too old')) return 'too_old';
  if (detail.startsWith('retries spent')) return 'retries_spent';
  return undefined; // 'internal error: …' has no DropReason
}

/** `intakeAddress` comes from the tracker (the old event does not carry it); '' when unknown. */
export function fromLegacyCopyEvent(e: LegacyCopyEvent, intakeAddress: string): ForwarderEvent | undefined {
  const at = intakeAddress.lastIndexOf('@');
  const copy: CopyFacts = {
    copyId: e.copyId, mid: 0, queueId: e.queueId, messageId: '', intakeAddress,
    destination: at < 0 ? '' : intakeAddress.slice(at + 1).toLowerCase(), bytes: 0,
  };
  const result = (outcome: 'delivered' | 'soft' | 'hard') => ({
    outcome, dsn: '', reply: outcome === 'delivered' ? e.detail : '', detail: outcome === 'delivered' ? '' : e.detail,
    phase: 'message' as const, ...(e.dcid === undefined ? {} : { dcid: e.dcid }),
  });
  switch (e.kind) {
    case 'enqueued': return { type: 'enqueued', at: e.at, copy };
    case 'attempt': return { type: 'attempt', at: e.at, copy, attempt: 0 };
    case 'delivered': return { type: 'delivered', at: e.at, copy, attempt: 0, result: result('delivered') };
    case 'retry': return { type: 'soft_bounce', at: e.at, copy, attempt: 0, result: result('soft'), retryInMs: 0 };
    case 'hard_bounce': return { type: 'hard_bounce', at: e.at, copy, attempt: 0, result: result('hard') };
    case 'dropped': {
      const reason = legacyDropReason(e.detail);
      if (reason === undefined) return undefined;
      return { type: 'dropped', at: e.at, copy, reason, attempted: reason === 'retries_spent', detail: e.detail };
    }
  }
}
