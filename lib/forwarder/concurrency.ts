/**
 * The one place that decides how many connections an intake gets (the gateway's rule for
 * `the.tdc.queue`): none while its queue is empty, at least min_connections as soon as it has
 * entries, one more for every BACKLOG_PER_CONNECTION copies beyond that, up to max_connections.
 * How many copies go over one connection (messages_per_connection) is the agent's, not this.
 * Pure; imports nothing.
 */

/**
 * Copies of backlog each connection is there for. 10 keeps min_connections (3) up to a backlog of
 * 30 copies and reaches max_connections (10) at 100, where a handshake per connection is cheap
 * next to the copies it carries. A constant, not a setting: the gateway exposes none either.
 */
export const BACKLOG_PER_CONNECTION = 10;

export interface ConcurrencyLimits {
  minConnections: number;
  maxConnections: number;
}

/** Connections wanted for an intake with `backlog` copies in its queue (waiting, in flight or waiting to retry). */
export function connectionsWanted(backlog: number, limits: ConcurrencyLimits): number {
  if (!(backlog > 0)) return 0;
  const max = Math.max(1, Math.floor(limits.maxConnections));
  const min = Math.min(max, Math.max(1, Math.floor(limits.minConnections)));
  return Math.min(max, Math.max(min, Math.ceil(backlog / BACKLOG_PER_CONNECTION)));
}
