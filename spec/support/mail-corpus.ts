/**
 * A deterministic corpus of test messages (8-bit headers, folded and empty headers, dot lines,
 * multi-recipient, null sender, an optional big body) and a driver that sends them over scripted
 * SMTP sessions (several messages per session, RSET mid-transaction, a second EHLO).
 * Test support only: imports nothing from lib/.
 */
import { SmtpClient } from './smtp-client';

export interface PlannedMessage {
  /** Index in the corpus. */
  n: number;
  from: string;
  to: string[];
  mailParams: string[];
  rcptParams: string[][];
  /** CRLF message as the client sends it (before dot-stuffing). */
  data: Buffer;
}

export interface SentMessage extends PlannedMessage {
  queueId: string;
  session: number;
}

export interface CorpusOptions {
  count: number;
  /** Index of the message that gets a body of `bigBodyBytes` (default none). */
  bigIndex?: number;
  bigBodyBytes?: number;
  /** Unique tag in Message-IDs and subjects, so runs cannot be confused. */
  tag: string;
  /** Indices sent without Date:/Message-ID: (Postfix adds them and shows them to milters). */
  bare?: (n: number) => boolean;
  domain?: string;
}

const UTF8 = (s: string): string => Buffer.from(s, 'utf8').toString('latin1');

function bodyFor(n: number, bytes?: number): string {
  if (n % 11 === 4) return ''; // headers only
  const lines: string[] = [`Message ${n} body.`, '.a line starting with a dot', '..two dots', '.', 'trailing spaces   '];
  lines.push(UTF8(`8-bit body line: Grüße, naïve café ☃ #${n}`));
  for (let i = 0; i < n % 7; i++) lines.push(`filler line ${i} `.repeat(1 + (i % 5)));
  let body = lines.join('\r\n') + '\r\n';
  if (bytes !== undefined) {
    const unit = 'The quick brown fox jumps over the lazy dog. 0123456789 abcdefghijklmnopqrstuvwxyz!\r\n';
    const parts: string[] = [body];
    let size = body.length;
    for (let i = 0; size < bytes; i++) {
      const l = i % 1000 === 999 ? '.dot line inside the big body\r\n' : unit;
      parts.push(l);
      size += l.length;
    }
    body = parts.join('');
  }
  return body;
}

export function makeCorpus(o: CorpusOptions): PlannedMessage[] {
  const domain = o.domain ?? 'example.test';
  const out: PlannedMessage[] = [];
  for (let n = 0; n < o.count; n++) {
    const nrcpt = n % 7 === 3 ? 3 : n % 5 === 1 ? 2 : 1;
    const to = Array.from({ length: nrcpt }, (_, i) => `user${n}-${i}@${domain}`);
    const from = n % 17 === 9 ? '' : `sender${n}@client.test`;
    const h: string[] = [];
    if (n % 13 === 6) h.push('Received: from relay.client.test (relay.client.test [192.0.2.7])\r\n\tby edge.client.test; Mon, 01 Jan 2024 00:00:00 +0000');
    h.push(`From: "Sender ${n}" <sender${n}@client.test>`);
    h.push(`To: ${to.join(', ')}`);
    h.push(n % 3 === 0 ? UTF8(`Subject: ${o.tag} #${n} Grüße – ☃`) : `Subject: ${o.tag} #${n}`);
    if (!(o.bare?.(n) ?? false)) {
      h.push(`Date: Mon, 01 Jan 2024 00:${String(n % 60).padStart(2, '0')}:00 +0000`);
      h.push(`Message-ID: <${o.tag}.${n}@client.test>`);
    }
    if (n % 4 === 1) h.push(`X-Folded: first line ${n}\r\n\tsecond line (tab)\r\n    third line (spaces)`);
    if (n % 4 === 2) h.push('X-Empty:');
    if (n % 4 === 3) h.push(UTF8(`X-Utf8: raw UTF-8 äöü €uro ${n}`));
    if (n % 6 === 5) h.push('X-Leading-Spaces:    three extra spaces');
    if (n % 9 === 8) h.push('X-No-Space:value');
    h.push('MIME-Version: 1.0', 'Content-Type: text/plain; charset=utf-8', 'Content-Transfer-Encoding: 8bit');
    const data = h.join('\r\n') + '\r\n\r\n' + bodyFor(n, n === o.bigIndex ? o.bigBodyBytes : undefined);
    const buf = Buffer.from(data, 'latin1');
    out.push({
      n,
      from,
      to,
      mailParams: n % 2 === 0 ? [`SIZE=${buf.length}`, 'BODY=8BITMIME'] : ['BODY=8BITMIME'],
      rcptParams: to.map((_, i) => (i === 0 && n % 3 === 1 ? ['NOTIFY=NEVER'] : [])),
      data: buf,
    });
  }
  return out;
}

export interface SessionPlan {
  messages: PlannedMessage[];
  /** Before the message at this index: MAIL + RCPT, then RSET (an aborted transaction). */
  rsetBefore?: number;
  /** Before the message at this index: a second EHLO. */
  ehloBefore?: number;
  /** Authenticate first (AUTH PLAIN). */
  auth?: { user: string; password: string };
}

/** Splits messages into sessions of the given sizes (sizes must add up to messages.length). */
export function splitSessions(messages: PlannedMessage[], sizes: number[]): PlannedMessage[][] {
  if (sizes.reduce((a, b) => a + b, 0) !== messages.length) throw new Error('splitSessions: sizes do not add up');
  const out: PlannedMessage[][] = [];
  let at = 0;
  for (const s of sizes) {
    out.push(messages.slice(at, at + s));
    at += s;
  }
  return out;
}

/** Runs the sessions, `parallel` at a time; every message must be accepted with a queue id. */
export async function runSessions(port: number, plans: SessionPlan[], parallel = 2): Promise<SentMessage[]> {
  const sent: SentMessage[] = [];
  let next = 0;
  async function worker(): Promise<void> {
    for (let s = next++; s < plans.length; s = next++) {
      const plan = plans[s]!;
      const c = await SmtpClient.connect(port);
      try {
        await c.ehlo('client.test');
        if (plan.auth !== undefined) await c.authPlain(plan.auth.user, plan.auth.password);
        for (const [i, m] of plan.messages.entries()) {
          if (plan.rsetBefore === i) {
            await c.mail(`aborted${s}@client.test`);
            await c.rcpt(`aborted${s}@example.test`);
            await c.rset();
          }
          if (plan.ehloBefore === i) await c.ehlo('client-again.test');
          const { reply, queueId } = await c.send({ from: m.from, to: m.to, data: m.data, mailParams: m.mailParams, rcptParams: m.rcptParams });
          if (queueId === undefined) throw new Error(`session ${s}: no queue id in ${reply.text}`);
          sent.push({ ...m, queueId, session: s });
        }
        await c.quit();
      } catch (err) {
        throw new Error(`session ${s}: ${(err as Error).message}\n${c.transcript.slice(-12).join('\n')}`);
      } finally {
        c.close();
      }
    }
  }
  await Promise.all(Array.from({ length: Math.min(parallel, plans.length) }, () => worker()));
  return sent.sort((a, b) => a.n - b.n);
}
