/**
 * milter.conf parsing: every invalid fixture reports exactly the problems its `# expect:` lines name
 * (as file:line: key: …), valid fixtures give the right typed values, and the result is frozen.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { SCHEMA, loadConfigFile, parseConfigText, type Config } from '../../../lib/config';
import { GATEWAY_FS, TEST_CA_PEM } from '../../support/gateway-fs';
import { networks, patterns, relay } from '../../support/config-values';

const FIXTURES = path.resolve(__dirname, '../../fixtures/config');

function load(name: string, hostname = 'gw1.example.org'): Config {
  const r = loadConfigFile(path.join(FIXTURES, name), { hostname, io: GATEWAY_FS });
  if (!r.ok) throw new Error(`expected ${name} to be valid:\n${r.errors.join('\n')}`);
  return r.config;
}

function errorsOf(text: string, fileName = 'milter.conf'): string[] {
  const r = parseConfigText(text, fileName, { hostname: 'gw1.example.org' });
  return r.ok ? [] : r.errors;
}

describe('invalid files: every problem, each with its file:line', () => {
  const files = fs.readdirSync(path.join(FIXTURES, 'invalid')).filter((f) => f.endsWith('.conf')).sort();

  it('has one fixture per kind of problem', () => expect(files.length).toBeGreaterThanOrEqual(24));

  it.each(files)('%s', (file) => {
    const full = path.join(FIXTURES, 'invalid', file);
    const text = fs.readFileSync(full, 'utf8');
    const expected = [...text.matchAll(/^# expect: (.*)$/gm)].map((m) => `${full}:${m[1]}`);
    expect(expected.length).toBeGreaterThan(0);
    const r = loadConfigFile(full, { hostname: 'gw3.example.org' });
    expect(r.ok).toBe(false);
    expect(r.ok ? [] : r.errors).toEqual(expected);
  });

  it('reports a missing file as a problem, not a throw', () => {
    const r = loadConfigFile(path.join(FIXTURES, 'no-such.conf'));
    expect(r.ok ? [] : r.errors).toEqual([expect.stringMatching(/no-such\.conf:0: file: expected a readable file, got .*ENOENT/)]);
  });
});

describe('valid files', () => {
  it('a minimal file gets every default', () => {
    const c = load('valid/minimal.conf', 'host.example');
    expect(c.milter).toEqual({
      listen: { kind: 'inet', host: '127.0.0.1', port: 0 }, socketMode: 0o660, socketGroup: undefined, hostname: 'host.example', group: undefined,
      statusListen: '127.0.0.1:8895', logLevel: 'info', logFormat: 'plain', logFile: undefined, maxMessageSize: 50 * 1024 ** 2, drainTime: 30_000,
      metricsListen: 'no', metricsAllow: networks('127.0.0.0/8', '::1'), readyFailingTime: 300_000,
    });
    expect(c.tdc).toEqual({
      enabled: false, intakeAddress: '', relay: undefined, tlsCaFile: undefined, maxQueueAge: 120_000, retryDelay: 10_000,
      remoteIpHeader: 'X-IronPort-RemoteIP', queueMaxMessages: 1000, queueMaxBytes: 100 * 1024 ** 2, minConnections: 3,
      maxConnections: 10, messagesPerConnection: 100, connectTimeout: 10_000, commandTimeout: 30_000,
    });
    expect(c.direction).toEqual({ outgoingDaemonNames: ['ORIGINATING'], authenticatedIsOutgoing: true, internalNetworks: [] });
    expect(c.policies).toEqual([{ name: 'DEFAULT', recipients: [], senders: [], tdc: 'global' }]);
    expect(c.sources['tdc.enabled']).toBe('default (no intake address configured)');
    expect(c.sources['milter.listen']).toBe('milter (minimal.conf:2)');
    expect(c.sources['policy DEFAULT']).toBe('implicit');
  });

  it('a file setting every key gets typed values (continuations, comments, mixed separators)', () => {
    const c = load('valid/full.conf', 'ignored.example');
    expect(c.milter).toEqual({
      listen: { kind: 'unix', path: '/var/spool/postfix/tdc/milter.sock' }, socketMode: 0o640, socketGroup: 'postfix', hostname: 'GW1.Example.ORG',
      group: 'emea', statusListen: '[::1]:9895', logLevel: 'debug', logFormat: 'json', logFile: '/var/log/tdc-milter.log',
      maxMessageSize: 10_000_000, drainTime: 90_000,
      metricsListen: 'no', metricsAllow: networks('127.0.0.0/8', '::1'), readyFailingTime: 300_000, // not in full.conf: its line numbers are asserted
    });
    expect(c.tdc).toEqual({
      enabled: true, intakeAddress: '33c48e-27xp9-05ecb4@beta.cmd.cisco.com', relay: relay('[192.0.2.25]:2525'),
      tlsCaFile: '/etc/ssl/intake-ca.pem', tlsCa: TEST_CA_PEM, maxQueueAge: 300_000, retryDelay: 1500, remoteIpHeader: 'X-Remote-IP',
      queueMaxMessages: 50, queueMaxBytes: 512 * 1024, minConnections: 1, maxConnections: 4, messagesPerConnection: 100,
      connectTimeout: 2000, commandTimeout: 60_000,
    });
    expect(c.direction).toEqual({
      outgoingDaemonNames: ['ORIGINATING', 'submission', 'smtps'], authenticatedIsOutgoing: false,
      internalNetworks: networks('10.0.0.0/8', '192.168.0.0/16', '2001:db8::/32', '::ffff:172.16.0.0/108'),
    });
    expect(c.policies).toEqual([
      { name: 'finance', recipients: patterns('@finance.example.com', '@.finance.example.com', 'cfo@example.com'), senders: patterns('@partner.example'),
        tdc: 'custom', intakeAddress: '15e1c36b-098c-4e87-590@beta.cmd.cisco.com' },
      { name: 'lab', recipients: patterns('user@'), senders: [], tdc: 'no' },
      { name: 'DEFAULT', recipients: [], senders: [], tdc: 'global' },
    ]);
    expect(c.sources['tdc.max_connections']).toBe('group emea (full.conf:50)');
    expect(c.sources['policy DEFAULT']).toBe('full.conf:47');
  });

  it('has exactly one Config field per schema row (plus tlsCa, the bundle read from tls_ca_file): no hand-mapped extras', () => {
    const c = load('valid/full.conf');
    for (const section of ['milter', 'tdc', 'direction'] as const) {
      const fields = SCHEMA.filter((k) => k.section === section).map((k) => k.field);
      const extra = section === 'tdc' ? ['tlsCa'] : [];
      expect(Object.keys(c[section]).sort()).toEqual([...fields, ...extra].sort());
    }
  });

  it('is deep-frozen', () => {
    const c = load('valid/full.conf');
    expect(Object.isFrozen(c)).toBe(true);
    expect(Object.isFrozen(c.tdc)).toBe(true);
    expect(Object.isFrozen(c.policies[0]!.recipients)).toBe(true);
    expect(Object.isFrozen(c.sources)).toBe(true);
    expect(() => { (c.tdc as { enabled: boolean }).enabled = false; }).toThrow(TypeError);
  });
});

describe('syntax details', () => {
  it('accepts CRLF line ends and reports the right lines', () => {
    expect(errorsOf('[milter]\r\nlisten = inet:127.0.0.1:0\r\n\r\nlog_level = loud\r\n')).toEqual([
      'milter.conf:4: log_level: expected one of debug, info, warning, error, got "loud"',
    ]);
  });

  it('a # inside a value is kept; a # after whitespace starts a comment', () => {
    const r = parseConfigText('[milter]\nlog_file = /var/log/tdc#1.log   # comment\n', 'm.conf', { hostname: 'h' });
    expect(r.ok && r.config.milter.logFile).toBe('/var/log/tdc#1.log');
  });

  it('a continuation line joins the value of the key line before it, comments in between allowed', () => {
    const r = parseConfigText('[direction]\ninternal_networks = 10.0.0.0/8,\n# a comment\n  192.168.0.0/16   # tail\n\t172.16.0.0/12\n', 'm.conf');
    expect(r.ok && r.config.direction.internalNetworks).toEqual(networks('10.0.0.0/8', '192.168.0.0/16', '172.16.0.0/12'));
  });

  it('a continuation line after a section header is an error', () => {
    expect(errorsOf('[milter]\n   inet:127.0.0.1:0\n')).toEqual([
      'milter.conf:2: inet:127.0.0.1:0: expected a key or [section] at the start of the line (indented lines continue the previous value), got "   inet:127.0.0.1:0"',
    ]);
  });

  it('section kinds are case-insensitive, [policy default] is the DEFAULT policy', () => {
    const r = parseConfigText('[TDC]\nintake_address = a@b.example\n[Policy default]\ntdc = no\n', 'm.conf');
    expect(r.ok && r.config.policies).toEqual([{ name: 'DEFAULT', recipients: [], senders: [], tdc: 'no' }]);
  });

  it('an empty file is valid and means all defaults', () => {
    const r = parseConfigText('', 'empty.conf', { hostname: 'h.example' });
    expect(r.ok && r.config.milter.listen).toEqual({ kind: 'inet', host: '127.0.0.1', port: 8894 });
  });

  it('problems of one kind do not cascade into follow-up problems', () => {
    // the bad recipients must not also make "a policy with neither recipients nor senders"
    expect(errorsOf('[tdc]\nintake_address = a@b.example\n[policy p]\nrecipients = nope\n')).toEqual([
      'milter.conf:4: recipients: expected address patterns (user@domain, @domain, @.domain or user@), separated by commas, got "nope"',
    ]);
    expect(errorsOf('[tdc]\nmax_queue_age = x\nretry_delay = 5m\n')).toHaveLength(1);
  });

  it('journaling only via custom policies works with DEFAULT tdc = no', () => {
    const r = parseConfigText('[policy f]\nrecipients = @f.example\ntdc = custom\nintake_address = f@intake.example\n[policy DEFAULT]\ntdc = no\n', 'm.conf');
    expect(r.ok && r.config.tdc.enabled).toBe(true);
    expect(r.ok && r.config.sources['tdc.enabled']).toBe('default');
  });

  it('enabled = no needs no intake address', () => {
    const r = parseConfigText('[tdc]\nenabled = no\n', 'm.conf');
    expect(r.ok && r.config.tdc.enabled).toBe(false);
  });

  it('setting an intake address turns journaling on by default', () => {
    const r = parseConfigText('[tdc]\nintake_address = a@b.example\n', 'm.conf');
    expect(r.ok && r.config.tdc.enabled).toBe(true);
  });
});

describe('file details', () => {
  it('ignores a UTF-8 byte order mark', () => {
    expect(parseConfigText('\uFEFF[milter]\nlisten = inet:127.0.0.1:0\n', 'm.conf').ok).toBe(true);
  });

  it('names the embedded default briefly in sources', () => {
    const r = parseConfigText('[milter]\nlisten = inet:127.0.0.1:0\n', '(embedded default)');
    expect(r.ok && r.config.sources['milter.listen']).toBe('milter (embedded default:2)');
  });
});
