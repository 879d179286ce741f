/**
 * The retry table inside the SMTP agent, as a table: every kind of SmtpFailure and every reply class
 * at every phase map to one outcome, kind and DSN; DNS failures; which failures move on to the next
 * host. Also what a copy's bytes need (copy-body.ts) when the journal builder did not say.
 */
import type { SmtpFailure, SmtpPhase } from '../../../lib/smtp/client-session';
import { SmtpProtocolError } from '../../../lib/smtp/errors';
import type { SmtpReply } from '../../../lib/smtp/reply-parser';
import { bodyTypeOf } from '../../../lib/forwarder/copy-body';
import { DnsFailure } from '../../../lib/forwarder/route';
import { classifyDns, classifySmtp, deliveredResult, dsnOf, triesNextHost } from '../../../lib/forwarder/smtp-outcome';

const reply = (code: number, enhanced?: string, text = 'text'): SmtpReply => (enhanced ? { code, enhanced, lines: [text] } : { code, lines: [text] });
const at = (phase: SmtpPhase, r: SmtpReply): SmtpFailure => ({ kind: 'reply', phase, reply: r });

describe('classifySmtp: the retry table', () => {
  const table: [string, SmtpFailure, string, string, string][] = [
    // name, failure, outcome, kind, dsn
    ['550 at MAIL', at('mail', reply(550, '5.7.1')), 'hard', 'smtp_5xx', '5.7.1'],
    ['554 after the data', at('message', reply(554)), 'hard', 'smtp_5xx', '5.0.0'],
    ['500 to EHLO', at('ehlo', reply(500)), 'hard', 'smtp_5xx', '5.0.0'],
    ['554 greeting', at('greeting', reply(554, '5.3.2')), 'hard', 'smtp_5xx', '5.3.2'],
    ['503 at RCPT', at('rcpt', reply(503, '5.5.1')), 'soft', 'smtp_special', '5.5.1'],
    ['552 after the data', at('message', reply(552, '5.3.4')), 'soft', 'smtp_special', '5.3.4'],
    ['552 at MAIL', at('mail', reply(552)), 'soft', 'smtp_special', '5.0.0'],
    ['450 at RCPT', at('rcpt', reply(450, '4.2.0')), 'soft', 'smtp_4xx', '4.2.0'],
    ['451 at DATA', at('data', reply(451)), 'soft', 'smtp_4xx', '4.0.0'],
    ['421 greeting', at('greeting', reply(421, '4.3.2')), 'soft', 'smtp_4xx', '4.3.2'],
    ['421 to STARTTLS', at('starttls', reply(421)), 'soft', 'smtp_4xx', '4.0.0'],
    ['454 to STARTTLS', at('starttls', reply(454, '4.7.0')), 'hard', 'tls', '5.7.10'],
    ['502 to STARTTLS', at('starttls', reply(502)), 'hard', 'tls', '5.7.10'],
    ['250 where 354 was due', at('data', reply(250)), 'soft', 'network', '4.5.0'],
    ['over SIZE', { kind: 'size', phase: 'mail', limit: 10, bytes: 20 }, 'hard', 'size', '5.3.4'],
    ['no 8BITMIME', { kind: 'no_8bitmime', phase: 'mail', body: '8bit' }, 'hard', 'no_8bitmime', '5.6.3'],
    ['certificate', { kind: 'tls', phase: 'tls', code: 'CERT_HAS_EXPIRED', message: 'certificate has expired' }, 'hard', 'tls', '5.7.10'],
    ['refused', { kind: 'network', phase: 'connect', code: 'ECONNREFUSED', message: 'refused' }, 'soft', 'network', '4.4.1'],
    ['reset mid-data', { kind: 'network', phase: 'message', code: 'ECONNRESET', message: 'reset' }, 'soft', 'network', '4.4.2'],
    ['connect timeout', { kind: 'timeout', phase: 'connect', message: 'slow' }, 'soft', 'network', '4.4.1'],
    ['no greeting', { kind: 'timeout', phase: 'greeting', message: 'slow' }, 'soft', 'network', '4.4.1'],
    ['no final reply', { kind: 'timeout', phase: 'message', message: 'slow' }, 'soft', 'network', '4.4.2'],
    ['garbage reply', { kind: 'protocol', phase: 'rcpt', error: new SmtpProtocolError('SMTP_REPLY_MALFORMED', 'bad') }, 'soft', 'network', '4.5.0'],
    ['aborted', { kind: 'aborted', phase: 'message', message: 'too old' }, 'soft', 'aborted', '4.4.7'],
  ];
  it.each(table)('%s → %s %s %s', (_name, failure, outcome, kind, dsn) => {
    const r = classifySmtp(failure, 7);
    expect(r).toMatchObject({ outcome, kind, dsn, dcid: 7 });
    expect(r.detail).not.toBe('');
  });

  it('keeps the server\'s reply as received and the phase; RSET/QUIT count as the message phase', () => {
    expect(classifySmtp(at('rcpt', reply(550, '5.1.1', 'no such user')))).toEqual({
      outcome: 'hard', kind: 'smtp_5xx', dsn: '5.1.1', reply: '550 5.1.1 no such user', detail: 'Rejected by intake', phase: 'rcpt',
    });
    expect(classifySmtp(at('rset', reply(421))).phase).toBe('message');
  });

  it('says what a TLS failure was and that STARTTLS was refused: the detail is the gateway\'s "TLS Error", the reply says why', () => {
    expect(classifySmtp({ kind: 'tls', phase: 'tls', code: 'ERR_TLS_CERT_ALTNAME_INVALID', message: 'Hostname/IP does not match' }))
      .toMatchObject({ detail: 'TLS Error', reply: 'ERR_TLS_CERT_ALTNAME_INVALID: Hostname/IP does not match', dsn: '5.7.10' });
    expect(classifySmtp(at('starttls', reply(502, undefined, 'not implemented')))).toMatchObject({ detail: 'TLS Error', reply: '502 not implemented', phase: 'starttls' });
  });

  it('a timeout before the greeting is the gateway\'s "connection timed out", saying what never came', () => {
    expect(classifySmtp({ kind: 'timeout', phase: 'greeting', message: 'slow' })).toMatchObject({ detail: 'connection timed out', reply: 'Greeting never received', dsn: '4.4.1' });
    expect(classifySmtp({ kind: 'timeout', phase: 'connect', message: 'slow' })).toMatchObject({ detail: 'connection timed out', reply: 'Timeout', dsn: '4.4.1' });
    expect(classifySmtp({ kind: 'timeout', phase: 'message', message: 'no reply to the data' })).toMatchObject({ detail: 'connection timed out', reply: 'no reply to the data', dsn: '4.4.2' });
  });

  it('a delivered copy carries the final reply, its DSN and the DCID', () => {
    expect(deliveredResult(reply(250, '2.0.0', 'Ok: queued as ABC'), 3)).toEqual({
      outcome: 'delivered', dsn: '2.0.0', reply: '250 2.0.0 Ok: queued as ABC', detail: 'delivered', phase: 'message', dcid: 3,
    });
    expect(dsnOf(reply(250))).toBe('2.0.0');
  });
});

describe('classifyDns', () => {
  it('NXDOMAIN and null MX are hard 5.1.2 Bad destination host; SERVFAIL and timeouts soft', () => {
    expect(classifyDns(new DnsFailure('MX lookup for x.test: NXDOMAIN', true, 'ENOTFOUND', { name: 'x.test', rrtype: 'MX' }))).toEqual({
      outcome: 'hard', kind: 'dns_hard', dsn: '5.1.2', detail: 'Bad destination host', reply: 'DNS Hard Error looking up x.test (MX) : NXDomain', phase: 'route',
    });
    expect(classifyDns(new DnsFailure('address of mx.x.test: NXDOMAIN', true, 'ENOTFOUND', { name: 'mx.x.test', rrtype: 'A' })).reply)
      .toBe('DNS Hard Error looking up mx.x.test (A) : NXDomain');
    expect(classifyDns(new DnsFailure('MX lookup for x.test failed: ESERVFAIL', false, 'ESERVFAIL', { name: 'x.test', rrtype: 'MX' })).reply)
      .toBe('DNS Soft Error looking up x.test (MX) : ServFail');
    expect(classifyDns(new DnsFailure('x.test has a null MX (accepts no mail)', true, 'NULLMX'))).toMatchObject({ outcome: 'hard', dsn: '5.1.2' });
    expect(classifyDns(new DnsFailure('MX lookup for x.test failed: ESERVFAIL', false, 'ESERVFAIL'))).toMatchObject({ outcome: 'soft', kind: 'dns', dsn: '4.4.3' });
  });
});

describe('triesNextHost', () => {
  it.each<[SmtpFailure, boolean]>([
    [{ kind: 'network', phase: 'connect', code: 'ECONNREFUSED', message: '' }, true],
    [{ kind: 'timeout', phase: 'connect', message: '' }, true],
    [{ kind: 'timeout', phase: 'greeting', message: '' }, true],
    [at('greeting', reply(421)), true],
    [at('greeting', reply(554)), false],
    [{ kind: 'tls', phase: 'tls', message: '' }, false],
    [at('starttls', reply(454)), false],
    [{ kind: 'network', phase: 'ehlo', message: '' }, false],
  ])('%j → %s', (f, next) => {
    expect(triesNextHost(f)).toBe(next);
  });
});

describe('bodyTypeOf', () => {
  const b = (s: string): Buffer => Buffer.from(s, 'latin1');
  it('believes what the journal builder said', () => {
    expect(bodyTypeOf({ raw: b('caf\u00e9'), body: '7bit' })).toBe('7bit');
  });
  it('looks at the bytes otherwise: ASCII 7bit, any high byte 8bit, a line over 998 bytes binary', () => {
    expect(bodyTypeOf({ raw: b('a\r\nb\r\n') })).toBe('7bit');
    expect(bodyTypeOf({ raw: [b('a\r\n'), b('caf\u00e9\r\n')] })).toBe('8bit');
    expect(bodyTypeOf({ raw: b(`${'x'.repeat(998)}\r\n${'y'.repeat(998)}`) })).toBe('7bit');
    expect(bodyTypeOf({ raw: b(`${'x'.repeat(999)}\r\n`) })).toBe('binary');
    // A long line split across pieces still counts as one line.
    expect(bodyTypeOf({ raw: [b('x'.repeat(500)), b(`${'x'.repeat(499)}\r\n`)] })).toBe('binary');
    expect(bodyTypeOf({ raw: [b('x'.repeat(500)), b(`\r\n${'x'.repeat(499)}\r\n`)] })).toBe('7bit');
  });
  it('agrees with the journal builder at every cut: a 998-octet line whose CR and LF fall in two pieces is 7bit', () => {
    const ok = b(`${'x'.repeat(998)}\r\ny\r\n`);
    const long = b(`y\n${'x'.repeat(999)}\ny\r\n`);
    for (let cut = 0; cut <= ok.length; cut++) expect(bodyTypeOf({ raw: [ok.subarray(0, cut), ok.subarray(cut)] })).toBe('7bit');
    for (let cut = 0; cut <= long.length; cut++) expect(bodyTypeOf({ raw: [long.subarray(0, cut), long.subarray(cut)] })).toBe('binary');
  });
});
