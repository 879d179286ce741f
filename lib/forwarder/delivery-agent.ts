/**
 * The delivery contract between the queue (decides *when*) and a delivery agent (decides *how*, and
 * what a failure means). Shaped like what Postfix's delivery agents report to qmgr: an outcome, an
 * enhanced status code, the server's reply and the phase it failed in. The agent classifies; the
 * queue only applies "soft → one retry, hard → done, max_queue_age → done". Types only.
 */
import type { JournalCopy } from './types';

/** delivered: the intake took it. soft: try again (once). hard: never again. */
export type DeliveryOutcome = 'delivered' | 'soft' | 'hard';

/** Which row of the gateway's retry table a failure fell in (for logs, metrics and tests). */
export type FailureKind =
  | 'tls'           // handshake, certificate, STARTTLS refused or not offered, TLS < 1.2: hard
  | 'dns_hard'      // NXDOMAIN, null MX, no address for the implicit MX: hard
  | 'dns'           // DNS timeout, SERVFAIL, refused: soft
  | 'smtp_special'  // 503 or 552: soft
  | 'smtp_4xx'      // any other 4xx (421 included): soft
  | 'smtp_5xx'      // any other 5xx: hard
  | 'network'       // refused, reset, unreachable, timed out, closed early: soft
  | 'size'          // over the server's SIZE (RFC 1870), refused before any data: hard 5.3.4
  | 'no_8bitmime'   // 8-bit copy and the server does not offer 8BITMIME: hard
  | 'local'         // our side: hard
  | 'aborted';      // we aborted the attempt (queue age, shutdown); the queue has already decided

/** Where in the SMTP dialogue it ended. */
export type DeliveryPhase =
  | 'route' | 'connect' | 'greeting' | 'ehlo' | 'starttls' | 'tls'
  | 'mail' | 'rcpt' | 'data' | 'message' | 'local';

export interface DeliveryResult {
  outcome: DeliveryOutcome;
  /** RFC 3463 enhanced status code: '2.0.0', '4.4.1', '5.1.2', '5.3.4'. */
  dsn: string;
  /** The server's reply that decided it, as received (lines joined by ' / '), or '' when none. */
  reply: string;
  /** Why, in a few words for the admin: 'Bad destination host', 'TLS Error', 'connection timed out'. */
  detail: string;
  /** The retry-table row; absent when delivered. */
  kind?: FailureKind;
  /** The delivery connection (the gateway's DCID); absent when no connection was made. */
  dcid?: number;
  phase: DeliveryPhase;
}

/** A copy as the queue hands it to an agent: the journal plus its numeric MID. */
export interface QueuedCopy extends JournalCopy {
  /** The gateway-style message id: a number that never repeats, across restarts too. */
  mid: number;
}

export interface DeliveryContext {
  /** 1 for the first attempt, 2 for the retry. */
  attempt: number;
  /** Aborted when the copy reaches max_queue_age or the forwarder shuts down. */
  signal: AbortSignal;
}

export interface AgentStats {
  /** Connections open or opening, in all. */
  connections: number;
  /** The same by intake domain (the `tophosts` rows). */
  byDomain: Map<string, number>;
}

/**
 * One delivery protocol (SMTP today; LMTP or an HTTP intake would be another agent, not a queue
 * change). `deliver` never rejects: every failure is a typed result.
 */
export interface DeliveryAgent<Options = unknown> {
  deliver(copy: QueuedCopy, ctx: DeliveryContext): Promise<DeliveryResult>;
  /**
   * The queue's concurrency decision for one intake: keep `connections` connections open (or
   * opening) to it while it has copies, 0 when it has none (idle connections then close).
   */
  demand(intakeAddress: string, connections: number): void;
  stats(): AgentStats;
  reconfigure(options: Options): void;
  close(): Promise<void>;
}
