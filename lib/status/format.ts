/**
 * Text for the CLI: the destination table of `tdc-milter status` (like Cisco's tophosts: the.tdc.queue
 * first, then each intake domain) and the per-event history of `tdc-milter track <id>`.
 * Pure functions of the endpoint's JSON; imports util and status siblings only.
 */
import { oneLine } from '../util/logger';
import type { DestinationJson, StatusJson, TrackRecordJson } from './status-json';

/** `3d 04:05:06`, or `04:05:06` under a day. */
export function formatUptime(seconds: number): string {
  const s = Math.max(0, Math.floor(seconds));
  const days = Math.floor(s / 86400);
  const hms = [Math.floor((s % 86400) / 3600), Math.floor((s % 3600) / 60), s % 60].map((n) => String(n).padStart(2, '0')).join(':');
  return days > 0 ? `${days}d ${hms}` : hms;
}

/** Numeric columns: two header lines and the field. */
const COLUMNS: readonly [string, string, (d: DestinationJson) => number][] = [
  ['active', 'rcpts', (d) => d.activeRecipients],
  ['conn', 'out', (d) => d.connectionsOut],
  ['', 'delivered', (d) => d.delivered],
  ['soft', 'bounced', (d) => d.softBounced],
  ['hard', 'bounced', (d) => d.hardBounced],
  ['', 'dropped', (d) => d.dropped],
  ['queue', 'bytes', (d) => d.queuedBytes],
];

function plural(n: number, one: string, many = `${one}s`): string {
  return `${n} ${n === 1 ? one : many}`;
}

/** The `tdc-milter status` text: a heading, the milter line, and the destination table. */
export function formatStatusTable(status: StatusJson): string {
  const rows = [status.queue, ...status.domains];
  const names = rows.map((r) => oneLine(r.destination, 200));
  const nameWidth = Math.max('destination'.length, ...names.map((n) => n.length));
  const cells = rows.map((r) => COLUMNS.map(([, , get]) => String(get(r))));
  const widths = COLUMNS.map(([a, b], i) => Math.max(a.length, b.length, ...cells.map((c) => c[i]!.length)));
  const line = (first: string, rest: string[]) => [first.padEnd(nameWidth), ...rest.map((c, i) => c.padStart(widths[i]!))].join('  ').trimEnd();

  const m = status.milter;
  const out = [
    `tdc-milter ${status.version} (pid ${status.pid}), up ${formatUptime(status.uptimeSeconds)}, as of ${status.now}`,
    `milter ${status.milterListen}: ${plural(m.activeSessions, 'session')} active, ${plural(m.connectionsTotal, 'connection')}, ` +
      `${plural(m.messagesTotal, 'message')}, ${plural(m.protocolErrors, 'protocol error')}`,
    status.journaling
      ? `journaling on${status.intakeAddress ? `, global intake ${oneLine(status.intakeAddress, 200)}` : ''}`
      : 'journaling off',
    '',
    line('', COLUMNS.map(([a]) => a)),
    line('destination', COLUMNS.map(([, b]) => b)),
    ...rows.map((_, i) => line(names[i]!, cells[i]!)),
  ];
  return `${out.join('\n')}\n`;
}

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

/** Message tracking's time stamp, in UTC: '16 Feb 2024 21:19:24 (GMT +00:00)'. */
export function trackingTime(iso: string): string {
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso;
  const p2 = (n: number) => String(n).padStart(2, '0');
  return `${p2(d.getUTCDate())} ${MONTHS[d.getUTCMonth()]} ${d.getUTCFullYear()} ${p2(d.getUTCHours())}:${p2(d.getUTCMinutes())}:${p2(d.getUTCSeconds())} (GMT +00:00)`;
}

/** One block per copy: message tracking's summary line, a heading, one line per event (time, event, DCID, detail), the state. */
export function formatTrack(records: readonly TrackRecordJson[]): string {
  const dcidText = (dcid: number | undefined) => (dcid === undefined ? '-' : `DCID ${dcid}`);
  const all = records.flatMap((r) => r.events);
  const timeWidth = Math.max(0, ...all.map((e) => e.at.length));
  const kindWidth = Math.max(0, ...all.map((e) => e.kind.length));
  const dcidWidth = Math.max(0, ...all.map((e) => dcidText(e.dcid).length));

  const blocks = records.map((r) => {
    const head = [`copy ${oneLine(r.copyId, 200)}`, `MID ${r.mid}`, `queue id ${oneLine(r.queueId, 200)}`];
    head.push(`Message-ID ${r.messageId ? oneLine(r.messageId, 500) : '(none)'}`);
    if (r.intakeAddress) head.push(`intake ${oneLine(r.intakeAddress, 300)}`);
    const lines = [`${trackingTime(r.summaryAt)} ${oneLine(r.summary, 300)}`, head.join('  ')];
    r.events.forEach((e, i) => {
      if (i === 1 && r.omittedEvents > 0) lines.push(`  … ${plural(r.omittedEvents, 'event')} left out`);
      lines.push(`  ${e.at.padEnd(timeWidth)}  ${e.kind.padEnd(kindWidth)}  ${dcidText(e.dcid).padEnd(dcidWidth)}  ${oneLine(e.detail)}`.trimEnd());
    });
    lines.push(r.final ? `  final state: ${r.state}` : `  state: ${r.state} (not final yet)`);
    return lines.join('\n');
  });
  return blocks.length === 0 ? '' : `${blocks.join('\n\n')}\n`;
}
