/**
 * `tdc-milter tophosts` in the gateway's layout (receiver-facts §4), and `HostDownState`, which marks a
 * destination whose last delivery attempt failed on the connection (from the event stream).
 * `formatTophosts` is pure. Imports only the forwarder's types (and the queue's name from its
 * types.ts, which has no code) and util.
 */
import type { ForwarderEvent } from '../forwarder';
import { QUEUE_NAME as QUEUE } from '../forwarder/types';
import { oneLine } from '../util/logger';
import type { DestinationJson, StatusJson } from './status-json';

/** Failures that happen before an SMTP transaction could start: the host counts as down. */
const CONNECTION_KINDS: ReadonlySet<string> = new Set(['network', 'tls', 'dns', 'dns_hard']);

/** Which destinations were down as of their last delivery attempt. */
export class HostDownState {
  readonly #down = new Map<string, boolean>();
  #queueDown = false;

  readonly observe = (e: ForwarderEvent): void => {
    let result;
    if (e.type === 'delivered' || e.type === 'soft_bounce' || e.type === 'hard_bounce') result = e.result;
    else if (e.type === 'dropped' && e.reason === 'retries_spent') result = e.last;
    if (!result || !('copy' in e) || e.copy === undefined) return;
    // An aborted attempt says nothing about the host.
    if (result.kind === 'aborted') return;
    const down = result.outcome !== 'delivered' && CONNECTION_KINDS.has(result.kind ?? '');
    this.#down.set(e.copy.destination, down);
    this.#queueDown = down;
  };

  /** `the.tdc.queue` (its latest attempt) or an intake domain (that domain's latest attempt). */
  isDown(destination: string): boolean {
    return destination === QUEUE ? this.#queueDown : this.#down.get(destination) === true;
  }
}

/** 104163 → '104,163'. */
export function thousands(n: number): string {
  return String(Math.trunc(n)).replace(/\B(?=(\d{3})+(?!\d))/g, ',');
}

const DAYS = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'];
const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

/** 'Fri Feb 16 19:55:34 2024 CST' in `timeZone` (default: this machine's). */
export function gatewayTime(date: Date, timeZone?: string): string {
  const parts = new Intl.DateTimeFormat('en-US', {
    timeZone, hourCycle: 'h23', weekday: 'short', year: 'numeric', month: 'numeric', day: 'numeric',
    hour: '2-digit', minute: '2-digit', second: '2-digit', timeZoneName: 'short',
  }).formatToParts(date);
  const get = (type: Intl.DateTimeFormatPartTypes): string => parts.find((p) => p.type === type)?.value ?? '';
  const month = MONTHS[Number(get('month')) - 1] ?? get('month');
  const day = get('day').padStart(2, ' ');
  const weekday = DAYS.find((d) => get('weekday').startsWith(d)) ?? get('weekday');
  return `${weekday} ${month} ${day} ${get('hour')}:${get('minute')}:${get('second')} ${get('year')} ${get('timeZoneName')}`;
}

/** Columns after `#` and the host: two header lines and the field, as in the gateway's sample. */
const COLUMNS: readonly [string, string, (d: DestinationJson) => number][] = [
  ['Active', 'Recip.', (d) => d.activeRecipients],
  ['Conn.', 'Out', (d) => d.connectionsOut],
  ['Deliv.', 'Recip.', (d) => d.delivered],
  ['Soft', 'Bounced', (d) => d.softBounced],
  ['Hard', 'Bounced', (d) => d.hardBounced],
];

/** The whole `tophosts` text from the status document. */
export function formatTophosts(status: StatusJson, options: { timeZone?: string } = {}): string {
  const rows = [status.queue, ...status.domains]
    .map((d, i) => ({ d, i }))
    // Most active first; the queue's own row leads a tie, then the list's order.
    .sort((a, b) => b.d.activeRecipients - a.d.activeRecipients || a.i - b.i)
    .map(({ d }) => d);
  const hosts = rows.map((d) => `${d.down === true ? '*' : ''}${oneLine(d.destination, 200)}`);
  const hostWidth = Math.max(24, ...hosts.map((h) => h.length)) + 1;
  const cells = rows.map((d) => COLUMNS.map(([, , get]) => thousands(get(d))));
  const widths = COLUMNS.map(([a, b], i) => Math.max(a.length, b.length, ...cells.map((c) => c[i]!.length)) + 1);
  const numWidth = Math.max(3, String(rows.length).length + 1);
  const line = (num: string, host: string, rest: readonly string[]): string =>
    `${num.padEnd(numWidth)} ${host.padEnd(hostWidth)}${rest.map((c, i) => c.padEnd(widths[i]!)).join('')}`.trimEnd();
  return [
    '',
    `Status as of:                ${gatewayTime(new Date(status.now), options.timeZone)}`,
    "Hosts marked with '*' were down as of the last delivery attempt.",
    '',
    line('#', 'Recipient Host', COLUMNS.map(([a]) => a)),
    line('#', 'Recipient Host', COLUMNS.map(([, b]) => b)),
    ...rows.map((_, i) => line(String(i + 1), hosts[i]!, cells[i]!)),
    '',
  ].join('\n');
}
