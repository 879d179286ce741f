/**
 * What the forwarder tells its observers. Each event carries the whole fact (which copy, which
 * Message-ID, which intake, which outcome, which connection), so the mail log, `track`, the
 * metrics and the tests all subscribe to the same stream and nothing is fed to two places by hand.
 * Copy events come from the queue; connection events from the delivery agent. Types only.
 */
import type { DeliveryResult } from './delivery-agent';

/** Everything that names a copy. */
export interface CopyFacts {
  /** Copy id that `track` knows: MTA queue id + copy number ('4Xk2Lq0yZm.1'). */
  copyId: string;
  /** The gateway-style numeric MID. */
  mid: number;
  /** The MTA's queue id of the original. */
  queueId: string;
  /** The original's Message-ID header value, '' when it had none. */
  messageId: string;
  intakeAddress: string;
  /** Lower-case domain of the intake address (the `tophosts` row). */
  destination: string;
  bytes: number;
}

/** Why a copy left the queue without being delivered. */
export type DropReason =
  | 'queue_full'     // never attempted: no room
  | 'shutting_down'  // never attempted, or still queued when the drain time ran out
  | 'too_old'        // max_queue_age reached
  | 'retries_spent'; // the retry failed too

interface At { /** Epoch ms on the forwarder's clock. */ at: number }

export type CopyEvent = At & { copy: CopyFacts } & (
  | { type: 'enqueued' }
  | { type: 'attempt'; attempt: number }
  /** A connection took the copy (the agent knows which). */
  | { type: 'delivery_start'; dcid: number; attempt: number }
  | { type: 'delivered'; attempt: number; result: DeliveryResult }
  | { type: 'soft_bounce'; attempt: number; result: DeliveryResult; retryInMs: number }
  | { type: 'hard_bounce'; attempt: number; result: DeliveryResult }
  /**
   * Left the queue undelivered. `attempted` tells the gateway's view: a copy removed after an
   * attempt counts as hard bounced in `tophosts`; one never attempted is only dropped.
   */
  | { type: 'dropped'; reason: DropReason; attempted: boolean; detail: string; last?: DeliveryResult }
);

export type ConnectionEvent = At & { dcid: number; destination: string } & (
  | { type: 'connection_opened'; host: string; ip: string; port: number; localAddress: string }
  /** `resumed`: the handshake resumed an earlier session with the same host (no full handshake). */
  | { type: 'tls_established'; protocol: string; cipher: string; resumed?: boolean }
  | {
      type: 'connection_error'; host: string; ip: string; port: number; localAddress: string;
      /** The gateway's `details:` word ('timeout', 'refused', 'reset', 'tls'). */
      details: string;
      reason: string;
    }
  | { type: 'connection_closed'; delivered: number }
);

/** A failed DNS lookup on the way to an intake (the gateway's `DNS Error … MX - NXDomain`). */
export type DnsEvent = At & {
  type: 'dns_error';
  domain: string;
  rrtype: 'MX' | 'A' | 'AAAA';
  /** dnsWord's: 'NXDomain', 'ServFail', 'Timeout', 'Null MX', 'No address', 'Refused' (else the resolver's code). */
  error: string;
  hard: boolean;
  /** The copy the lookup was for, when one was waiting on it. */
  copy?: CopyFacts;
};

export type ForwarderEvent = CopyEvent | ConnectionEvent | DnsEvent;
export type ForwarderEventType = ForwarderEvent['type'];
