/**
 * The JSON documents of the status endpoint (`GET /status`, `GET /track/<id>`) and the builders that
 * make them from the daemon's live numbers. Server, client and formatters all speak these types.
 * Imports only status siblings.
 */
import { QUEUE_DESTINATION, type MilterStatsSnapshot, type QueueCounters, type QueueSnapshot } from './metrics';
import type { CopyEventKind, CopyRecord, CopyState, TrackLookup, TrackMatch } from './tracker';

export interface DestinationJson extends QueueCounters {
  /** `the.tdc.queue` or an intake domain. */
  destination: string;
  /** Its last delivery attempt failed on the connection (tophosts' `*`). */
  down: boolean;
}

export interface StatusJson {
  version: string;
  pid: number;
  /** ISO 8601, UTC. */
  startedAt: string;
  now: string;
  uptimeSeconds: number;
  /** The milter's resolved listen address, e.g. `inet:127.0.0.1:8894`. */
  milterListen: string;
  /** Where this endpoint answers, e.g. `127.0.0.1:8895`. */
  statusListen: string;
  journaling: boolean;
  /** The global intake address; '' when none. */
  intakeAddress: string;
  /** The whole queue: destination `the.tdc.queue`. */
  queue: DestinationJson;
  /** One row per intake domain, sorted by domain. */
  domains: DestinationJson[];
  milter: MilterStatsSnapshot;
  tracking: { copies: number; capacity: number };
}

export interface StatusInput {
  version: string;
  /** Epoch ms when the daemon started, and now. */
  startedAt: number;
  now: number;
  milterListen: string;
  statusListen: string;
  journaling: boolean;
  intakeAddress?: string;
  queue: QueueSnapshot;
  milter: MilterStatsSnapshot;
  tracking?: { size: number; capacity: number };
  pid?: number;
  /** Whether a destination was down as of its last delivery attempt (HostDownState). */
  isDown?: (destination: string) => boolean;
}

function row(destination: string, c: QueueCounters, isDown: ((d: string) => boolean) | undefined): DestinationJson {
  return {
    destination,
    down: isDown?.(destination) ?? false,
    activeRecipients: c.activeRecipients,
    connectionsOut: c.connectionsOut,
    delivered: c.delivered,
    softBounced: c.softBounced,
    hardBounced: c.hardBounced,
    dropped: c.dropped,
    queuedBytes: c.queuedBytes,
    enqueued: c.enqueued,
  };
}

/** The `/status` document from the daemon's live numbers. */
export function buildStatusJson(input: StatusInput): StatusJson {
  return {
    version: input.version,
    pid: input.pid ?? process.pid,
    startedAt: new Date(input.startedAt).toISOString(),
    now: new Date(input.now).toISOString(),
    uptimeSeconds: Math.max(0, Math.floor((input.now - input.startedAt) / 1000)),
    milterListen: input.milterListen,
    statusListen: input.statusListen,
    journaling: input.journaling,
    intakeAddress: input.intakeAddress ?? '',
    queue: row(QUEUE_DESTINATION, input.queue.total, input.isDown),
    domains: [...input.queue.byDomain.keys()].sort().map((d) => row(d, input.queue.byDomain.get(d)!, input.isDown)),
    milter: { ...input.milter },
    tracking: { copies: input.tracking?.size ?? 0, capacity: input.tracking?.capacity ?? 0 },
  };
}

export interface TrackEventJson {
  kind: CopyEventKind;
  /** ISO 8601, UTC, with milliseconds. */
  at: string;
  dcid?: number;
  detail: string;
}

export interface TrackRecordJson {
  copyId: string;
  mid: number;
  queueId: string;
  messageId: string;
  intakeAddress: string;
  state: CopyState;
  final: boolean;
  omittedEvents: number;
  /** Message tracking's one-line summary in the gateway's words, and when (ISO 8601, UTC). */
  summary: string;
  summaryAt: string;
  events: TrackEventJson[];
}

export interface TrackJson {
  /** What was asked for. */
  id: string;
  matchedBy: TrackMatch;
  records: TrackRecordJson[];
}

export function trackRecordJson(rec: CopyRecord): TrackRecordJson {
  return {
    copyId: rec.copyId,
    mid: rec.mid,
    queueId: rec.queueId,
    messageId: rec.messageId,
    intakeAddress: rec.intakeAddress,
    state: rec.state,
    final: rec.final,
    omittedEvents: rec.omittedEvents,
    summary: rec.summary,
    summaryAt: new Date(rec.summaryAt).toISOString(),
    events: rec.events.map((e) => {
      const out: TrackEventJson = { kind: e.kind, at: new Date(e.at).toISOString(), detail: e.detail };
      if (e.dcid !== undefined) out.dcid = e.dcid;
      return out;
    }),
  };
}

/** The `/track/<id>` document of a tracker lookup. */
export function buildTrackJson(id: string, lookup: TrackLookup): TrackJson {
  return { id, matchedBy: lookup.matchedBy, records: lookup.records.map(trackRecordJson) };
}
