/**
 * Build CapturedMessage values for unit specs: from raw .eml bytes the way Postfix hands a message to a
 * milter with SMFIP_HDR_LEADSPC (value keeps its leading space, folds joined by bare \n), or from parts.
 */
import type { ClientInfo, HeaderField } from '../../lib/message';
import { mtaFacts, type MilterMessage } from '../../lib/milter';

export interface EnvelopeParts {
  queueId?: string;
  sender?: string;
  recipients?: string[];
  client?: ClientInfo;
  macros?: Record<string, string>;
  oversized?: boolean;
}

/** Split CRLF .eml bytes into header fields (exact values) and the body after the blank line. */
export function splitEml(raw: Buffer): { headers: HeaderField[]; body: Buffer } {
  const text = raw.toString('latin1');
  const end = text.startsWith('\r\n') ? 0 : text.indexOf('\r\n\r\n');
  if (end < 0) throw new Error('no blank line after the headers');
  const headers: HeaderField[] = [];
  const block = end === 0 ? '' : text.slice(0, end);
  for (const line of block === '' ? [] : block.split('\r\n')) {
    if (/^[ \t]/.test(line) && headers.length > 0) {
      headers[headers.length - 1]!.value += `\n${line}`;
      continue;
    }
    const colon = line.indexOf(':');
    if (colon <= 0) throw new Error(`not a header line: ${JSON.stringify(line)}`);
    headers.push({ name: line.slice(0, colon), value: line.slice(colon + 1) });
  }
  const bodyStart = end === 0 ? 2 : end + 4;
  return { headers, body: raw.subarray(bodyStart) };
}

export function capturedFromEml(raw: Buffer, env: EnvelopeParts = {}): MilterMessage {
  const { headers, body } = splitEml(raw);
  return makeMessage({ ...env, headers, body: [body] });
}

/**
 * A message as the milter hands it on. `macros` are what the MTA sent (mapped onto the neutral facts
 * by the milter's own mapping); `client: undefined` given explicitly means no connect info.
 */
export function makeMessage(parts: EnvelopeParts & { headers?: HeaderField[]; body?: Buffer[] } = {}): MilterMessage {
  const body = parts.body ?? [Buffer.from('Hello.\r\n', 'latin1')];
  const macros = new Map(Object.entries(parts.macros ?? { j: 'gw.example.org', daemon_name: 'mta' }));
  const client = 'client' in parts ? parts.client : { hostname: 'mx.partner.example', family: 'inet' as const, address: '203.0.113.25', port: 40000 };
  return {
    ...mtaFacts(macros, client),
    queueId: parts.queueId ?? '4Xk2Lq0yZmz9vT',
    client,
    helo: 'mx.partner.example',
    macros,
    sender: { address: parts.sender ?? 'alice@partner.example', args: [] },
    recipients: (parts.recipients ?? ['bob@example.org']).map((address) => ({ address, args: [] })),
    headers: parts.headers ?? [{ name: 'Subject', value: ' Hi' }],
    headerValuesExact: true,
    body,
    bodyBytes: body.reduce((n, b) => n + b.length, 0),
    oversized: parts.oversized ?? false,
  };
}
