/**
 * The mail log against the gateway's own sample lines (receiver-facts §3): for the same event, each
 * sample line has a twin in our output, the same text word for word (level, `TDC:` or none, field
 * order), and the sequences come in the sample's order. Our extra lines keep the same style.
 */
import type { CopyEvent, CopyFacts, ForwarderEvent } from '../../../lib/forwarder';
import { MailLog, mailLogLines, replyTuple } from '../../../lib/status';
import { MemoryLogger } from '../../../lib/util/logger';
import { SAMPLES, fieldsOf, sample } from '../../support/gateway-samples';
import { delivered, hard, nxdomain, soft, tlsError } from '../../support/fake-agent';

const AT = Date.UTC(2024, 1, 16, 21, 19, 22);
const LEVEL = { info: 'Info', warning: 'Warning', error: 'Error', debug: 'Debug' } as const;

function facts(mid: number, messageId: string, intakeAddress: string, copyId = 'Q1.1'): CopyFacts {
  return {
    copyId, mid, queueId: copyId.replace(/\.\d+$/, ''), messageId, intakeAddress,
    destination: intakeAddress.slice(intakeAddress.lastIndexOf('@') + 1), bytes: 1234,
  };
}

/** Our lines as the gateway's log shows them after the time stamp. */
function rendered(events: ForwarderEvent[]): string[] {
  return events.flatMap(mailLogLines).map((l) => `${LEVEL[l.level]}: ${l.prefix ? 'TDC: ' : ''}${l.text}`);
}

const SUCCESS = facts(14501404, '<O7afv777xxreILg2OQ@gostrt-sstp-0>', '33c48e-27xp9-05ecb4@beta.cmd.cisco.com', '4Xk2Lq0yZm.1');
const INVALID = facts(171, '<20231129090720.24911.11947@vm21bsd0050.cs21>', 'test@esa.example.com');
const TLS = facts(1450012, '<t@x>', 'j@intake.example');

const successEvents: ForwarderEvent[] = [
  { type: 'enqueued', at: AT, copy: SUCCESS },
  { type: 'attempt', at: AT, copy: SUCCESS, attempt: 1 },
  { type: 'connection_opened', at: AT, dcid: 4566150, destination: 'beta.cmd.cisco.com', host: 'mx.beta.cmd.cisco.com', ip: '10.10.55.171', port: 25, localAddress: '10.13.0.99' },
  { type: 'tls_established', at: AT, dcid: 4566150, destination: 'beta.cmd.cisco.com', protocol: 'TLSv1.2', cipher: 'ECDHE-RSA-AES128-GCM-SHA256' },
  { type: 'delivery_start', at: AT, copy: SUCCESS, dcid: 4566150, attempt: 1 },
  { type: 'delivered', at: AT, copy: SUCCESS, attempt: 1, result: delivered(4566150, '250 2.0.0 Ok: queued as 4Qx') },
];

const invalidEvents: ForwarderEvent[] = [
  { type: 'enqueued', at: AT, copy: INVALID },
  { type: 'attempt', at: AT, copy: INVALID, attempt: 1 },
  { type: 'dns_error', at: AT, domain: 'esa.example.com', rrtype: 'MX', error: 'NXDomain', hard: true },
  { type: 'hard_bounce', at: AT, copy: INVALID, attempt: 1, result: nxdomain('outbound.cisco.om') },
];

describe('the gateway samples, field by field', () => {
  it.each(SAMPLES.map((s) => [s.name, s] as const))('the pattern of "%s" reads its own sample', (_n, s) => {
    expect(s.pattern.test(s.line)).toBe(true);
  });

  it('successful delivery: every sample line, word for word, in the sample\'s order', () => {
    const ours = rendered(successEvents);
    const names = ['enqueued', 'new connection', 'TLS success', 'delivery start', 'delivered', 'message finished'];
    const at = names.map((n) => ours.indexOf(sample(n).line));
    expect(at.every((i) => i >= 0)).toBe(true);
    expect([...at].sort((a, b) => a - b)).toEqual(at);
    // Field by field, so a failure says which field differs.
    for (const n of names) {
      const line = ours[at[names.indexOf(n)]!]!;
      expect(fieldsOf(n, line)).toEqual(fieldsOf(n, sample(n).line));
    }
  });

  it('the connection error line', () => {
    const ours = rendered([{
      type: 'connection_error', at: AT, dcid: 36, destination: 'intake.example', host: 'mx.intake.example', ip: '10.10.0.3', port: 25,
      localAddress: '10.10.11.63', details: 'timeout', reason: 'connection timed out',
    }]);
    expect(ours).toEqual([sample('connection error').line]);
  });

  it('the TLS error line', () => {
    const ours = rendered([{ type: 'hard_bounce', at: AT, copy: TLS, attempt: 1, result: tlsError() }]);
    expect(ours).toContain(sample('TLS error').line);
    expect(ours).not.toContain(expect.stringContaining('Hard Bounced.'));
  });

  it('invalid intake address: enqueued, DNS Error, then the three hard-bounce lines, in order', () => {
    const ours = rendered(invalidEvents);
    const names = ['enqueued', 'DNS error', 'hard bounced', 'delivery failed: hard bounced', 'bounced'];
    const samples = [
      "Info: TDC: MID 171 with Message-ID '<20231129090720.24911.11947@vm21bsd0050.cs21>' enqueued for forwarding to Cisco Secure Email Threat Defense to the message intake address test@esa.example.com",
      ...names.slice(1).map((n) => sample(n).line),
    ];
    const at = samples.map((l) => ours.indexOf(l));
    expect(at.every((i) => i >= 0)).toBe(true);
    expect([...at].sort((a, b) => a - b)).toEqual(at);
    expect(ours.at(-1)).toBe('Info: Message finished MID 171 done');
  });
});

describe('our own lines, in the same style', () => {
  it('names the copy id and MTA queue id of a MID right after the enqueued line', () => {
    const ours = rendered([{ type: 'enqueued', at: AT, copy: SUCCESS }]);
    expect(ours[1]).toBe('Info: TDC: MID 14501404 copy 4Xk2Lq0yZm.1 of queue id 4Xk2Lq0yZm ready 1234 bytes');
  });

  it('keeps the server\'s reply on a Message done line before the success line', () => {
    expect(rendered(successEvents)).toContain("Info: TDC: Message done DCID 4566150 MID 14501404 to RID [0] [('250 2.0.0 Ok: queued as 4Qx')]");
  });

  it('a soft bounce: a Delayed line with the retry', () => {
    expect(rendered([{ type: 'soft_bounce', at: AT, copy: SUCCESS, attempt: 1, result: soft(), retryInMs: 10_000 }])).toEqual([
      "Warning: TDC: Delayed: DCID 7 MID 14501404 to RID 0 - 4.3.0 - Temporary failure at intake ('451', ['4.3.0 try later']); retry in 10 s (attempt 1 of 2)",
    ]);
  });

  it('a 5xx: the hard-bounce sequence with the server\'s code and text', () => {
    const ours = rendered([{ type: 'hard_bounce', at: AT, copy: SUCCESS, attempt: 1, result: hard() }]);
    expect(ours).toEqual([
      "Info: TDC: Hard bounced - 5.7.1 - Rejected by intake ('550', ['5.7.1 Not allowed'])",
      'Info: TDC: MID 14501404 delivery failed to Cisco Secure Email Threat Defense: Hard Bounced.',
      "Info: Bounced: DCID 7 MID 14501404 to RID 0 - Bounced by destination server with response: 5.7.1 - Rejected by intake ('550', ['5.7.1 Not allowed'])",
      'Info: Message finished MID 14501404 done',
    ]);
    for (const n of ['hard bounced', 'delivery failed: hard bounced', 'bounced', 'message finished']) {
      expect(ours.some((l) => sample(n).pattern.test(l))).toBe(true);
    }
  });

  it('removed at 120 s after an attempt: our removed line, then the gateway\'s hard bounce (5.4.7)', () => {
    const e: CopyEvent = {
      type: 'dropped', at: AT, copy: SUCCESS, reason: 'too_old', attempted: true, detail: 'too old (120 s in queue, max_queue_age 120 s)', last: soft(),
    };
    const ours = rendered([e]);
    expect(ours[0]).toBe('Warning: TDC: MID 14501404 removed from the.tdc.queue: too old (120 s in queue, max_queue_age 120 s)');
    expect(ours[1]).toBe("Info: TDC: Hard bounced - 5.4.7 - Delivery expired (message too old) ('451', ['4.3.0 try later'])");
    expect(ours.slice(2)).toEqual([
      'Info: TDC: MID 14501404 delivery failed to Cisco Secure Email Threat Defense: Hard Bounced.',
      "Info: Bounced: DCID 7 MID 14501404 to RID 0 - Bounced by destination server with response: 5.4.7 - Delivery expired (message too old) ('451', ['4.3.0 try later'])",
      'Info: Message finished MID 14501404 done',
    ]);
  });

  it('retries spent: the last failure made permanent (5.x.x), the server\'s reply kept', () => {
    const ours = rendered([{ type: 'dropped', at: AT, copy: SUCCESS, reason: 'retries_spent', attempted: true, detail: 'retries spent (2 attempts)', last: soft() }]);
    expect(ours.slice(0, 2)).toEqual([
      'Warning: TDC: MID 14501404 removed from the.tdc.queue: retries spent (2 attempts)',
      "Info: TDC: Hard bounced - 5.3.0 - Temporary failure at intake ('451', ['4.3.0 try later'])",
    ]);
    expect(sample('hard bounced').pattern.test(ours[1]!)).toBe(true);
  });

  it('never attempted: a dropped line naming the copy (a refused copy had no enqueued line) and Message finished … aborted', () => {
    expect(rendered([{ type: 'dropped', at: AT, copy: SUCCESS, reason: 'queue_full', attempted: false, detail: 'queue full (2/2 messages)' }])).toEqual([
      'Warning: TDC: MID 14501404 copy 4Xk2Lq0yZm.1 of queue id 4Xk2Lq0yZm dropped from the.tdc.queue: queue full (2/2 messages)',
      'Info: Message finished MID 14501404 aborted',
    ]);
  });

  it('the attempt itself writes nothing (the gateway does not), a closed connection one line', () => {
    expect(mailLogLines({ type: 'attempt', at: AT, copy: SUCCESS, attempt: 1 })).toEqual([]);
    expect(rendered([{ type: 'connection_closed', at: AT, dcid: 5, destination: 'x', delivered: 3 }])).toEqual(['Info: DCID 5 close']);
  });

  it('replyTuple: the code apart, each line of a multi-line reply, 000 without a server reply', () => {
    expect(replyTuple('550 5.1.1 no / 550 5.1.1 really')).toBe("('550', ['5.1.1 no', '5.1.1 really'])");
    expect(replyTuple('')).toBe("('000', [])");
    expect(replyTuple('connect ECONNREFUSED')).toBe("('000', ['connect ECONNREFUSED'])");
  });

  it('MailLog writes through the logger, with the prefix only where the gateway has one', () => {
    const logger = new MemoryLogger();
    const log = new MailLog(logger);
    for (const e of successEvents) log.observe(e);
    const texts = logger.texts();
    expect(texts).toContain('DCID 4566150 TLS success protocol TLSv1.2 cipher ECDHE-RSA-AES128-GCM-SHA256');
    expect(texts).toContain('Message finished MID 14501404 done');
    expect(texts).toContain('TDC: Delivery start DCID 4566150 MID 14501404');
  });
});
