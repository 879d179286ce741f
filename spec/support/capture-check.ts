/**
 * Compares what our milter captured with what the real MTA delivered (and what the client sent):
 * envelope, queue id, header order and values, body bytes, originalMessage(). Returns readable
 * problem lines so a spec can `expect(problems).toEqual([])`. Imports lib/message only.
 */
import { HeaderField, originalMessage } from '../../lib/message';
import type { MilterMessage } from '../../lib/milter';
import { Delivery } from './delivered-mail';
import { SentMessage } from './mail-corpus';

/** Header fields of a CRLF message as an MTA hands them to a milter: folds joined by '\n'; without
 *  HDR_LEADSPC exactly one leading space is dropped from the value. */
export function headerFieldsOf(message: Buffer, valuesExact: boolean): HeaderField[] {
  const text = message.toString('latin1');
  const end = text.indexOf('\r\n\r\n');
  const block = end < 0 ? text : text.slice(0, end + 2);
  const fields: HeaderField[] = [];
  for (const line of block.split('\r\n')) {
    if (line === '') continue;
    if ((line[0] === ' ' || line[0] === '\t') && fields.length > 0) {
      fields[fields.length - 1]!.value += `\n${line}`;
      continue;
    }
    const colon = line.indexOf(':');
    const raw = line.slice(colon + 1);
    fields.push({ name: line.slice(0, colon).replace(/[ \t]+$/, ''), value: valuesExact || !raw.startsWith(' ') ? raw : raw.slice(1) });
  }
  return fields;
}

export function bodyOf(message: Buffer): Buffer {
  const i = message.indexOf('\r\n\r\n');
  return i < 0 ? Buffer.alloc(0) : message.subarray(i + 4);
}

function show(s: string, max = 120): string {
  const j = JSON.stringify(s);
  return j.length > max ? `${j.slice(0, max)}…` : j;
}

export interface CheckOptions {
  /** Also require the delivered message to equal what the client sent (no MTA header additions). */
  deliveredEqualsSent?: (m: SentMessage) => boolean;
}

/**
 * For every sent message: exactly one capture with its queue id; the capture's envelope equals what
 * was sent and what was delivered; headers (order, names, values), body and originalMessage() equal
 * the delivered copy minus the MTA's delivery headers.
 */
export function checkCaptures(sent: SentMessage[], captured: MilterMessage[], delivered: Delivery[], o: CheckOptions = {}): string[] {
  const problems: string[] = [];
  const byQid = new Map<string, MilterMessage[]>();
  for (const c of captured) byQid.set(c.queueId, [...(byQid.get(c.queueId) ?? []), c]);
  const deliveredByQid = new Map<string, Delivery[]>();
  for (const d of delivered) deliveredByQid.set(d.queueId, [...(deliveredByQid.get(d.queueId) ?? []), d]);
  if (captured.length !== sent.length) problems.push(`captured ${captured.length} messages, sent ${sent.length}`);

  for (const m of sent) {
    const p = (s: string): number => problems.push(`#${m.n} (${m.queueId}): ${s}`);
    const caps = byQid.get(m.queueId) ?? [];
    if (caps.length !== 1) {
      p(`captured ${caps.length} times`);
      continue;
    }
    const c = caps[0]!;
    const dels = deliveredByQid.get(m.queueId) ?? [];
    if (dels.length !== m.to.length) p(`delivered ${dels.length} copies for ${m.to.length} recipients`);
    if (c.macros.get('i') !== m.queueId) p(`macro i = ${show(c.macros.get('i') ?? '<unset>')}`);
    if (c.sender.address !== m.from) p(`sender ${show(c.sender.address)}, sent ${show(m.from)}`);
    if (c.sender.args.join(' ') !== m.mailParams.join(' ')) p(`MAIL args ${show(c.sender.args.join(' '))}, sent ${show(m.mailParams.join(' '))}`);
    const rcpts = c.recipients.map((r) => r.address);
    if (rcpts.join(',') !== m.to.join(',')) p(`recipients ${rcpts.join(',')}, sent ${m.to.join(',')}`);
    c.recipients.forEach((r, i) => {
      const want = (m.rcptParams[i] ?? []).join(' ');
      if (r.args.join(' ') !== want) p(`RCPT ${i} args ${show(r.args.join(' '))}, sent ${show(want)}`);
    });
    if (c.oversized) p('marked oversized');
    const bodyLen = c.body.reduce((a, b) => a + b.length, 0);
    if (bodyLen !== c.bodyBytes) p(`body chunks hold ${bodyLen} bytes, bodyBytes says ${c.bodyBytes}`);

    const orig = originalMessage(c);
    for (const d of dels) {
      const q = (s: string): number => p(`delivered to ${d.recipient}: ${s}`);
      if (d.sender !== m.from) q(`envelope sender ${show(d.sender)}`);
      if (!m.to.includes(d.recipient)) q('recipient not among those sent');
      const want = headerFieldsOf(d.message, c.headerValuesExact);
      const got = c.headers;
      if (want.length !== got.length) q(`${got.length} headers captured, ${want.length} delivered: [${got.map((h) => h.name).join(', ')}] vs [${want.map((h) => h.name).join(', ')}]`);
      for (let i = 0; i < Math.min(want.length, got.length); i++) {
        if (want[i]!.name !== got[i]!.name || want[i]!.value !== got[i]!.value) {
          q(`header ${i}: captured ${show(`${got[i]!.name}:${got[i]!.value}`)}, delivered ${show(`${want[i]!.name}:${want[i]!.value}`)}`);
          break; // later ones are usually shifted by the same cause
        }
      }
      const body = Buffer.concat(c.body);
      const dBody = bodyOf(d.message);
      if (!body.equals(dBody)) q(`body differs (${body.length} bytes captured, ${dBody.length} delivered; first difference at ${firstDiff(body, dBody)})`);
      if (!orig.equals(d.message)) q(`originalMessage() differs from the delivered message at byte ${firstDiff(orig, d.message)}`);
      if (o.deliveredEqualsSent?.(m) === true && !d.message.equals(m.data)) q(`delivered message differs from the sent one at byte ${firstDiff(d.message, m.data)}`);
    }
  }
  for (const c of captured) {
    if (!sent.some((m) => m.queueId === c.queueId)) problems.push(`captured an unexpected message, queue id ${show(c.queueId)}`);
  }
  return problems;
}

export function firstDiff(a: Buffer, b: Buffer): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return i;
  return a.length === b.length ? -1 : n;
}
