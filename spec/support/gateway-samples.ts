/**
 * The gateway's own mail-log sample lines (receiver-facts.md §3, verbatim, the level and text after the
 * time stamp) and, for each, a pattern that names every field, so a spec can compare our lines with
 * the samples field by field: same words, same field order, same `TDC:` prefix or none.
 */

export interface GatewaySample {
  name: string;
  /** The sample after its time stamp, e.g. `Info: TDC: MID 14501404 …`. */
  line: string;
  /** The same line with each variable field a named group. */
  pattern: RegExp;
}

const MID = '(?<mid>\\d+)';
const DCID = '(?<dcid>\\d+)';
const SETD = 'Cisco Secure Email Threat Defense';

export const SAMPLES: readonly GatewaySample[] = [
  {
    name: 'enqueued',
    line: "Info: TDC: MID 14501404 with Message-ID '<O7afv777xxreILg2OQ@gostrt-sstp-0>' enqueued for forwarding to Cisco Secure Email Threat Defense to the message intake address 33c48e-27xp9-05ecb4@beta.cmd.cisco.com",
    pattern: new RegExp(`^Info: TDC: MID ${MID} with Message-ID '(?<messageId>[^']*)' enqueued for forwarding to ${SETD} to the message intake address (?<intake>\\S+@\\S+)$`),
  },
  {
    name: 'new connection',
    line: 'Info: TDC: New SMTP DCID 4566150 interface 10.13.0.99 address 10.10.55.171 port 25',
    pattern: new RegExp(`^Info: TDC: New SMTP DCID ${DCID} interface (?<interface>[0-9a-f.:]+) address (?<address>[0-9a-f.:]+) port (?<port>\\d+)$`),
  },
  {
    name: 'TLS success',
    line: 'Info: DCID 4566150 TLS success protocol TLSv1.2 cipher ECDHE-RSA-AES128-GCM-SHA256',
    pattern: new RegExp(`^Info: DCID ${DCID} TLS success protocol (?<protocol>TLSv1\\.[23]) cipher (?<cipher>\\S+)$`),
  },
  {
    name: 'delivery start',
    line: 'Info: TDC: Delivery start DCID 4566150 MID 14501404',
    pattern: new RegExp(`^Info: TDC: Delivery start DCID ${DCID} MID ${MID}$`),
  },
  {
    name: 'delivered',
    line: 'Info: TDC: MID 14501404 successfully delivered for scanning with Cisco Secure Email Threat Defense.',
    pattern: new RegExp(`^Info: TDC: MID ${MID} successfully delivered for scanning with ${SETD}\\.$`),
  },
  {
    name: 'message finished',
    line: 'Info: Message finished MID 14501404 done',
    pattern: new RegExp(`^Info: Message finished MID ${MID} done$`),
  },
  {
    name: 'connection error',
    line: 'Info: TDC: Connection Error: DCID 36 domain: the.tdc.queue IP: 10.10.0.3 port: 25 details: timeout interface: 10.10.11.63 reason: connection timed out',
    pattern: new RegExp(`^Info: TDC: Connection Error: DCID ${DCID} domain: the\\.tdc\\.queue IP: (?<ip>[0-9a-f.:]+) port: (?<port>\\d+) details: (?<details>\\S+) interface: (?<interface>[0-9a-f.:]+) reason: (?<reason>.+)$`),
  },
  {
    name: 'TLS error',
    line: 'Info: TDC: MID 1450012 delivery failed to Cisco Secure Email Threat Defense:TLS Error.',
    pattern: new RegExp(`^Info: TDC: MID ${MID} delivery failed to ${SETD}:TLS Error\\.$`),
  },
  {
    name: 'DNS error',
    line: 'Info: DNS Error esa.example.com MX - NXDomain',
    pattern: /^Info: DNS Error (?<domain>\S+) (?<rrtype>MX|A|AAAA) - (?<error>NXDomain)$/,
  },
  {
    name: 'hard bounced',
    line: "Info: TDC: Hard bounced - 5.1.2 - Bad destination host ('000', ['DNS Hard Error looking up outbound.cisco.om (MX) : NXDomain'])",
    pattern: /^Info: TDC: Hard bounced - (?<dsn>5\.\d+\.\d+) - (?<text>.+?) \('(?<code>\d{3})', \['(?<reply>.*)'\]\)$/,
  },
  {
    name: 'delivery failed: hard bounced',
    line: 'Info: TDC: MID 171 delivery failed to Cisco Secure Email Threat Defense: Hard Bounced.',
    pattern: new RegExp(`^Info: TDC: MID ${MID} delivery failed to ${SETD}: Hard Bounced\\.$`),
  },
  {
    name: 'bounced',
    line: "Info: Bounced: DCID 0 MID 171 to RID 0 - Bounced by destination server with response: 5.1.2 - Bad destination host ('000', ['DNS Hard Error looking up outbound.cisco.om (MX) : NXDomain'])",
    pattern: new RegExp(`^Info: Bounced: DCID ${DCID} MID ${MID} to RID 0 - Bounced by destination server with response: (?<dsn>5\\.\\d+\\.\\d+) - (?<text>.+?) \\('(?<code>\\d{3})', \\['(?<reply>.*)'\\]\\)$`),
  },
];

export function sample(name: string): GatewaySample {
  const s = SAMPLES.find((x) => x.name === name);
  if (!s) throw new Error(`no gateway sample named ${name}`);
  return s;
}

/** The fields of a line by a sample's pattern, or undefined when it does not match. */
export function fieldsOf(name: string, line: string): Record<string, string> | undefined {
  const m = sample(name).pattern.exec(line);
  return m ? { ...(m.groups ?? {}) } : undefined;
}

/** receiver-facts §4, verbatim. */
export const TOPHOSTS_SAMPLE = `Status as of:                Fri Feb 16 19:55:34 2024 CST
Hosts marked with '*' were down as of the last delivery attempt.

#   Recipient Host           Active Conn.   Deliv.   Soft   Hard
#   Recipient Host           Recip.   Out      Recip. Bounced Bounced
5   the.tdc.queue           1        0       104,163 0        0`;

/** The gateway's mail-log time stamp (ctime(3) form, receiver-facts §3) and the line after it. */
export const GATEWAY_STAMPED = /^(?<stamp>(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun) (?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) [ \d]\d \d\d:\d\d:\d\d \d{4}) (?<line>(?:Info|Warning|Error|Debug): .*)$/;

/**
 * The twins of the named samples in `lines` (each after its time stamp), in the sample's order: each
 * the first line after the previous twin whose fields read by the sample's pattern. Returns their
 * fields; throws, showing the lines, when a sample has no twin.
 */
export function twins(lines: readonly string[], names: string[]): Record<string, string>[] {
  const found: Record<string, string>[] = [];
  let from = 0;
  for (const name of names) {
    const i = lines.findIndex((l, k) => k >= from && fieldsOf(name, l) !== undefined);
    if (i < 0) throw new Error(`no twin of the gateway's "${name}" line after line ${from}:\n${lines.join('\n')}`);
    found.push(fieldsOf(name, lines[i]!)!);
    from = i + 1;
  }
  return found;
}

/** A `tophosts` text in its parts: the time of `Status as of:`, the legend, the two header rows and the rows, as words. */
export interface TophostsParts {
  statusAsOf: string;
  legend: string;
  headers: string[][];
  rows: string[][];
}

export function tophostsParts(text: string): TophostsParts {
  const lines = text.split('\n');
  const at = lines.findIndex((l) => l.startsWith('Status as of:'));
  if (at < 0) throw new Error(`no "Status as of:" line in:\n${text}`);
  const words = (l: string): string[] => l.trim().split(/\s+/);
  const body = lines.slice(at + 1).filter((l) => l.trim() !== '');
  return {
    statusAsOf: lines[at]!.slice('Status as of:'.length).trim(),
    legend: body[0] ?? '',
    headers: body.slice(1, 3).map(words),
    rows: body.slice(3).map(words),
  };
}
