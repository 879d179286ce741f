/**
 * The retry table, row by row, and nodemailer 10.6's real error shapes (captured against
 * smtp-server on loopback) mapped onto it.
 */
import { classifyFailure, enhancedStatus } from '../../../lib/forwarder/classify';
import { DnsFailure } from '../../../lib/forwarder/route';
import { ConnectFailure, isFailover } from '../../../lib/forwarder/delivery-errors';

const err = (fields: Record<string, unknown>, message = 'x'): Error => Object.assign(new Error(message), fields);

describe('classifyFailure: the retry table', () => {
  const rows: [string, unknown, string, boolean][] = [
    // SMTP replies
    ['550 on RCPT', err({ code: 'EENVELOPE', responseCode: 550, response: '550 5.1.1 unknown', command: 'RCPT TO' }), 'smtp_5xx', false],
    ['554 on DATA', err({ code: 'EMESSAGE', responseCode: 554, response: '554 5.7.1 rejected', command: 'DATA' }), 'smtp_5xx', false],
    ['503 (special)', err({ code: 'EENVELOPE', responseCode: 503, response: '503 bad sequence', command: 'RCPT TO' }), 'smtp_special', true],
    ['552 (special)', err({ code: 'EMESSAGE', responseCode: 552, response: '552 too big', command: 'DATA' }), 'smtp_special', true],
    ['451 on MAIL', err({ code: 'EENVELOPE', responseCode: 451, response: '451 later', command: 'MAIL FROM' }), 'smtp_4xx', true],
    ['421 greeting', err({ code: 'EPROTOCOL', responseCode: 421, response: '421 try later', command: 'CONN' }), 'smtp_4xx', true],
    ['421 on EHLO', err({ code: 'ECONNECTION', responseCode: 421, response: '421 bye', command: 'EHLO' }), 'smtp_4xx', true],
    // TLS
    ['self-signed certificate', err({ code: 'ESOCKET', originalCode: 'DEPTH_ZERO_SELF_SIGNED_CERT', command: 'CONN' }), 'tls', false],
    ['name mismatch', err({ code: 'ESOCKET', originalCode: 'ERR_TLS_CERT_ALTNAME_INVALID', command: 'CONN' }), 'tls', false],
    ['TLS 1.1 only server', err({ code: 'ESOCKET', originalCode: 'ERR_SSL_TLSV1_ALERT_PROTOCOL_VERSION', library: 'SSL routines', command: 'CONN' }), 'tls', false],
    ['unsupported protocol', err({ code: 'ESOCKET', originalCode: 'ERR_SSL_UNSUPPORTED_PROTOCOL', command: 'CONN' }), 'tls', false],
    ['expired certificate', err({ code: 'ESOCKET', originalCode: 'CERT_HAS_EXPIRED', command: 'CONN' }), 'tls', false],
    ['unknown issuer', err({ code: 'ESOCKET', originalCode: 'UNABLE_TO_VERIFY_LEAF_SIGNATURE', command: 'CONN' }), 'tls', false],
    ['STARTTLS refused (454)', err({ code: 'ETLS', responseCode: 454, response: '454 TLS not available', command: 'STARTTLS' }), 'tls', false],
    ['STARTTLS not offered (500)', err({ code: 'ETLS', responseCode: 500, response: '500 Error: command not recognized', command: 'STARTTLS' }), 'tls', false],
    ['closed during upgrade', err({ code: 'ETLS', command: 'CONN' }), 'tls', false],
    ['upgrade timeout', err({ code: 'ETIMEDOUT', timeoutType: 'UPGRADE_TIMEOUT', command: 'CONN' }), 'tls', false],
    ['reset during handshake (our phase mark)', err({ code: 'ESOCKET', originalCode: 'ECONNRESET', command: 'CONN', phase: 'starttls' }), 'tls', false],
    ['REQUIRETLS', err({ code: 'EREQUIRETLS' }), 'tls', false],
    ['SSL routines library only', err({ code: 'ECONNECTION', library: 'SSL routines' }), 'tls', false],
    // DNS
    ['NXDOMAIN', new DnsFailure('MX lookup for x.test: NXDOMAIN', true, 'ENOTFOUND'), 'dns_hard', false],
    ['null MX', new DnsFailure('x.test has a null MX', true, 'NULLMX'), 'dns_hard', false],
    ['SERVFAIL', new DnsFailure('MX lookup failed: ESERVFAIL', false, 'ESERVFAIL'), 'dns', true],
    ['DNS timeout', new DnsFailure('MX lookup failed: ETIMEOUT', false, 'ETIMEOUT'), 'dns', true],
    ['nodemailer EDNS', err({ code: 'EDNS', originalCode: 'ENOTFOUND', command: 'CONN' }), 'dns', true],
    ['raw c-ares SERVFAIL', err({ code: 'ESERVFAIL', syscall: 'queryMx', hostname: 'x.test' }), 'dns', true],
    ['raw c-ares ECONNREFUSED', err({ code: 'ECONNREFUSED', syscall: 'queryMx' }), 'dns', true],
    ['raw c-ares NXDOMAIN', err({ code: 'ENOTFOUND', syscall: 'queryMx' }), 'dns_hard', false],
    // network
    ['connection refused (nodemailer)', err({ code: 'ESOCKET', originalCode: 'ECONNREFUSED', command: 'CONN' }), 'network', true],
    ['connection refused (ours)', new ConnectFailure('connect ECONNREFUSED 127.0.0.2:25', 'ESOCKET', 'ECONNREFUSED', '127.0.0.2', 25, 1), 'network', true],
    ['connect timeout (ours)', new ConnectFailure('connect timeout', 'ETIMEDOUT', 'ETIMEDOUT', '127.0.0.2', 25, 1), 'network', true],
    ['greeting timeout', err({ code: 'ETIMEDOUT', timeoutType: 'GREETING_TIMEOUT', command: 'CONN' }), 'network', true],
    ['socket timeout', err({ code: 'ETIMEDOUT', timeoutType: 'SOCKET_TIMEOUT', command: 'CONN' }), 'network', true],
    ['closed unexpectedly', err({ code: 'ECONNECTION', command: 'CONN' }), 'network', true],
    ['pool gave up after close', err({ code: 'ECONNECTION' }, 'Reached maximum number of retries after connection was closed'), 'network', true],
    ['reset', err({ code: 'ESOCKET', originalCode: 'ECONNRESET', command: 'CONN' }), 'network', true],
    ['raw ECONNRESET', err({ code: 'ECONNRESET', syscall: 'read' }), 'network', true],
    ['protocol error without reply code', err({ code: 'EPROTOCOL', command: 'CONN' }), 'network', true],
    // local
    ['size precheck', err({ code: 'EMESSAGE', command: 'MAIL FROM' }), 'local', false],
    ['stream error', err({ code: 'ESTREAM', command: 'API' }), 'local', false],
    ['bad envelope from API', err({ code: 'EENVELOPE', command: 'API' }), 'local', false],
    ['config', err({ code: 'ECONFIG' }), 'local', false],
    ['not an error at all', 'boom', 'local', false],
    ['null', null, 'local', false],
    // aborted
    ['our abort', err({ code: 'EABORT' }), 'aborted', false],
  ];

  it.each(rows)('%s', (_name, e, cls, retry) => {
    const c = classifyFailure(e);
    expect(c.cls).toBe(cls);
    expect(c.retry).toBe(retry);
  });

  it('keeps the server reply as the detail and its enhanced status code', () => {
    const c = classifyFailure(err({ code: 'EENVELOPE', responseCode: 550, response: '550 5.7.1 Not allowed' }));
    expect(c.status).toBe('5.7.1');
    expect(c.detail).toBe('550 5.7.1 Not allowed');
  });

  it('uses 5.1.2 Bad destination host for hard DNS failures', () => {
    const c = classifyFailure(new DnsFailure('MX lookup for x.test: NXDOMAIN', true));
    expect(`${c.status} ${c.text}`).toBe('5.1.2 Bad destination host');
    expect(c.detail).toBe('MX lookup for x.test: NXDOMAIN');
  });

  it('does not follow nodemailer’s `permanent` flag (552 is retried although permanent=true)', () => {
    expect(classifyFailure(err({ code: 'EMESSAGE', responseCode: 552, response: '552 x', permanent: true })).retry).toBe(true);
  });
});

describe('enhancedStatus', () => {
  it.each([
    ['550 5.1.1 user unknown', 550, '5.1.1'],
    ['451-4.3.0 first line', 451, '4.3.0'],
    ['550 rejected', 550, '5.0.0'],
    ['421 bye', 421, '4.0.0'],
    ['', 503, '5.0.0'],
  ])('%s', (reply, code, status) => {
    expect(enhancedStatus(reply, code)).toBe(status);
  });
});

describe('classifyFailure: TLS details for the log line', () => {
  it('prefers OpenSSL’s short reason and the Node code over the file:line message', () => {
    const c = classifyFailure(err({ code: 'ESOCKET', originalCode: 'ERR_SSL_TLSV1_ALERT_PROTOCOL_VERSION', library: 'SSL routines', reason: 'tlsv1 alert protocol version' },
      '80BC:error:0A00042E:SSL routines:ssl3_read_bytes:tlsv1 alert protocol version:../ssl/record/rec_layer_s3.c:1601:SSL alert number 70\n'));
    expect(c.detail).toBe('ERR_SSL_TLSV1_ALERT_PROTOCOL_VERSION: tlsv1 alert protocol version');
  });

  it('shows the reply when STARTTLS was refused', () => {
    expect(classifyFailure(err({ code: 'ETLS', responseCode: 454, response: '454 4.7.0 TLS not available', command: 'STARTTLS' })).detail)
      .toBe('STARTTLS refused: 454 4.7.0 TLS not available');
  });

  it('names the certificate problem', () => {
    expect(classifyFailure(err({ code: 'ESOCKET', originalCode: 'DEPTH_ZERO_SELF_SIGNED_CERT' }, 'self-signed certificate')).detail)
      .toBe('DEPTH_ZERO_SELF_SIGNED_CERT: self-signed certificate');
  });
});

describe('isFailover: which failures move on to the next MX in the same attempt', () => {
  it.each([
    ['refused', err({ code: 'ESOCKET', originalCode: 'ECONNREFUSED', command: 'CONN' }), true],
    ['greeting timeout', err({ code: 'ETIMEDOUT', timeoutType: 'GREETING_TIMEOUT', command: 'CONN' }), true],
    ['421 greeting', err({ code: 'EPROTOCOL', responseCode: 421, response: '421 busy', command: 'CONN' }), true],
    ['451 on MAIL', err({ code: 'EENVELOPE', responseCode: 451, response: '451 later' }), false],
    ['550', err({ code: 'EENVELOPE', responseCode: 550, response: '550 no' }), false],
    ['TLS', err({ code: 'ESOCKET', originalCode: 'DEPTH_ZERO_SELF_SIGNED_CERT' }), false],
    ['hard DNS', new DnsFailure('x', true), false],
  ])('%s → %s', (_n, e, expected) => {
    expect(isFailover(e)).toBe(expected);
  });
});
