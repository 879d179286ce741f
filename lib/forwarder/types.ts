/**
 * The forwarder's public shapes (the contract app.ts builds against): copies, options, counters.
 * The seam between the queue (when) and a delivery agent (how) is delivery-agent.ts.
 * Imports nothing but node types, util's RelaySpec and the event shapes (types only); never imports
 * milter, policy or journal.
 */
import type { RelaySpec } from '../util/net-address';
import type { CopyFacts } from './events';

/** The name admins know from Cisco's TDC: the one forwarder queue. */
export const QUEUE_NAME = 'the.tdc.queue';

/** First attempt plus one retry: Cisco's "retry once". */
export const MAX_ATTEMPTS = 2;

export interface JournalCopy {
  /** Copy id, e.g. '4Xk2Lq0yZm.1' (MTA queue id + copy number). */
  id: string;
  queueId: string;
  /** The original message's Message-ID header value, or ''. */
  messageId: string;
  intakeAddress: string;
  /** The journal message: one buffer, or pieces laid end to end (sent without joining them). */
  raw: Buffer | readonly Buffer[];
  /**
   * What the bytes need from the server, as the journal builder knows it: '7bit' (ASCII, lines of at
   * most 998 bytes), '8bit' (BODY=8BITMIME, RFC 6152), 'binary' (lines over 998 bytes: BODY=BINARYMIME
   * with BDAT where offered, RFC 3030). Absent: the delivery agent looks at the bytes itself.
   */
  body?: '7bit' | '8bit' | 'binary';
}

/** Size in bytes of a copy's message. */
export function journalBytes(raw: JournalCopy['raw']): number {
  if (Buffer.isBuffer(raw)) return raw.length;
  let n = 0;
  for (const b of raw) n += b.length;
  return n;
}

/** A copy by name, before (or without) its bytes. */
export type CopyIdentity = Omit<JournalCopy, 'raw'>;

export interface ForwarderOptions {
  /** Where copies go, as the config loader parsed `relay`; unset = MX of the intake address's domain. */
  relay?: RelaySpec | undefined;
  /** Extra trusted CAs (PEM) on top of the system's. */
  tlsCa?: Buffer[];
  /** ms a copy may stay in the queue, counted from enqueue. */
  maxQueueAge: number;
  /** ms between a failed attempt and its retry. */
  retryDelay: number;
  queueMaxMessages: number;
  queueMaxBytes: number;
  minConnections: number;
  maxConnections: number;
  messagesPerConnection: number;
  /** ms for a TCP connect (and each DNS query). */
  connectTimeout: number;
  /** ms for each SMTP reply (greeting, STARTTLS, each command). */
  commandTimeout: number;
  /** EHLO name. */
  heloName: string;
  /** DNS servers for MX/A/AAAA lookups, e.g. ['127.0.0.1:5353'] in tests; default: the system's. */
  dnsServers?: string[];
  /** Tests: the TLS server name to verify instead of the host name. */
  tlsServername?: string;
  /** Tests: SMTP port of MX and implicit-MX hosts (a relay carries its own port). @default 25 */
  mxPort?: number;
}

export interface ForwarderCounters {
  /** Copies in the queue, in flight included (tophosts' Active Recip.). */
  activeRecipients: number;
  connectionsOut: number;
  delivered: number;
  /** Failed attempts that were retried. */
  softBounced: number;
  /**
   * Copies the intake refused for good, and (the gateway's view) copies removed from the queue
   * undelivered after an attempt: retries spent, max_queue_age, or still unsent at shutdown.
   */
  hardBounced: number;
  /** Copies never attempted: refused at offer (queue full, shutting down) or never sent before they left. */
  dropped: number;
  queuedBytes: number;
  /** Copies offered, including those refused at once: enqueued = delivered + hardBounced + dropped + activeRecipients. */
  enqueued: number;
}

export function zeroCounters(): ForwarderCounters {
  return {
    activeRecipients: 0, connectionsOut: 0, delivered: 0, softBounced: 0,
    hardBounced: 0, dropped: 0, queuedBytes: 0, enqueued: 0,
  };
}

/** Lower-case domain of an address (after the last '@'), '' when there is none. */
export function domainOf(address: string): string {
  const at = address.lastIndexOf('@');
  return at < 0 ? '' : address.slice(at + 1).toLowerCase();
}

/** The facts every event of a copy carries: the one place they are built (queue and agent alike). */
export function copyFacts(copy: CopyIdentity, mid: number, bytes: number): CopyFacts {
  return {
    copyId: copy.id, mid, queueId: copy.queueId, messageId: copy.messageId,
    intakeAddress: copy.intakeAddress, destination: domainOf(copy.intakeAddress), bytes,
  };
}
