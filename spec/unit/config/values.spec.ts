/** The value parsers of milter.conf: durations, sizes, booleans, listen specs, addresses, patterns, CIDRs. */
import {
  ipBytes, parseAddressPattern, parseBool, parseCidr, parseDuration, parseEmailAddress, parseListen, parseOctal,
  parseRelay, parseSize, parseStatusListen, splitList,
} from '../../../lib/config/values';
import { SCHEMA, parseValue } from '../../../lib/config/schema';

const value = <T>(r: { ok: true; value: T } | { ok: false }) => (r.ok ? r.value : 'BAD');

describe('durations', () => {
  it.each([
    ['120s', 120_000], ['2m', 120_000], ['500ms', 500], ['1h', 3_600_000], ['1d', 86_400_000], ['120', 120_000],
    ['0', 0], ['0ms', 0], ['1.5s', 1500], ['0.25m', 15_000], ['007s', 7000],
  ])('%s = %d ms', (text, ms) => expect(value(parseDuration(text))).toBe(ms));

  it.each(['', 's', '10 s', '10S', '-1s', '1.0005s', '2w', '1e3', ' 5s', '5s ', '0x10', '1,5s', 'Infinity'])('rejects %j', (text) =>
    expect(parseDuration(text).ok).toBe(false));
});

describe('sizes', () => {
  it.each([
    ['50MiB', 50 * 1024 ** 2], ['512KiB', 512 * 1024], ['1GiB', 1024 ** 3], ['10MB', 10_000_000], ['1kb', 1000],
    ['100B', 100], ['4096', 4096], ['0', 0], ['1.5KiB', 1536], ['50mib', 50 * 1024 ** 2],
  ])('%s = %d bytes', (text, n) => expect(value(parseSize(text))).toBe(n));

  it.each(['', 'MiB', '50 MiB', '1.3B', '-1', '10TB', '5M', '5k', '1e6'])('rejects %j', (text) => expect(parseSize(text).ok).toBe(false));
});

describe('booleans, octal modes, lists', () => {
  it.each([['yes', true], ['YES', true], ['true', true], ['on', true], ['1', true], ['no', false], ['False', false], ['off', false], ['0', false]])(
    '%s = %s', (text, b) => expect(value(parseBool(text))).toBe(b));
  it.each(['', 'y', 'n', '2', 'enabled'])('rejects %j', (text) => expect(parseBool(text).ok).toBe(false));

  it.each([['0660', 0o660], ['660', 0o660], ['0o600', 0o600], ['0', 0]])('mode %s', (text, n) => expect(value(parseOctal(text))).toBe(n));
  it.each(['0999', '8', 'rw', '07777777'])('rejects mode %j', (text) => expect(parseOctal(text).ok).toBe(false));

  it('splits lists on commas and whitespace, dropping empty items', () => {
    expect(splitList('a, b,c  d,,\te ,')).toEqual(['a', 'b', 'c', 'd', 'e']);
    expect(splitList('')).toEqual([]);
  });
});

describe('listen, status and relay specs', () => {
  // Postfix style and Sendmail style, as the milter server reads them (one parser: lib/util/net-address).
  it.each([
    ['inet:127.0.0.1:8894', { kind: 'inet', host: '127.0.0.1', port: 8894 }],
    ['inet:8894@127.0.0.1', { kind: 'inet', host: '127.0.0.1', port: 8894 }],
    ['inet:localhost:0', { kind: 'inet', host: '127.0.0.1', port: 0 }],
    ['inet:8894@localhost', { kind: 'inet', host: '127.0.0.1', port: 8894 }],
    ['inet6:[::1]:8894', { kind: 'inet6', host: '::1', port: 8894 }],
    ['inet6:8894@::1', { kind: 'inet6', host: '::1', port: 8894 }],
    ['unix:/var/spool/postfix/tdc/milter.sock', { kind: 'unix', path: '/var/spool/postfix/tdc/milter.sock' }],
    ['local:/run/x.sock', { kind: 'unix', path: '/run/x.sock' }],
  ])('accepts listen %s', (text, value) => expect(parseListen(text)).toEqual({ ok: true, value }));
  it.each(['tcp:127.0.0.1:1', 'inet:127.0.0.1', 'inet:127.0.0.1:65536', 'inet6:::1:25', 'inet6:[::g]:25', 'unix:relative.sock',
    'inet:gw.example.org:8894', 'inet:8894@gw.example.org', 'inet:99999@127.0.0.1', ''])(
    'rejects listen %j', (text) => expect(parseListen(text).ok).toBe(false));
  it('says why a listen address is refused', () => {
    expect(parseListen('inet:8894@gw.example.org')).toEqual({ ok: false, expected: expect.stringContaining('inet:PORT@IP'),
      got: '"inet:8894@gw.example.org" ("gw.example.org" is not an IPv4 address (host names are not resolved; use an IP address))' });
  });

  it.each(['127.0.0.1:8895', '[::1]:8895', 'localhost:1', '127.0.0.2:0', 'no'])('accepts status_listen %s', (text) => expect(parseStatusListen(text).ok).toBe(true));
  it.each(['127.0.0.1', '::1:8895', 'off', '[x]:1', 'gw.example.org:8895', '192.0.2.1:8895', '[2001:db8::1]:8895', '0.0.0.0:8895'])(
    'rejects status_listen %j (loopback IP literals only)', (text) => expect(parseStatusListen(text).ok).toBe(false));

  it.each(['mx.intake.example', 'mx.intake.example:2525', '[192.0.2.1]', '[192.0.2.1]:25', '[2001:db8::1]:25', '[mx.example]', '192.0.2.1:25'])(
    'accepts relay %s', (text) => expect(parseRelay(text).ok).toBe(true));
  it.each(['2001:db8::1', 'mx.example:0', 'mx.example:99999', 'mx..example', '[]:25', 'smtp://mx'])('rejects relay %j', (text) =>
    expect(parseRelay(text).ok).toBe(false));
});

describe('e-mail addresses and address patterns', () => {
  it.each(['33c48e-27xp9-05ecb4@beta.cmd.cisco.com', 'a.b+c@x', 'intake@[192.0.2.1]'])('accepts intake %s', (text) =>
    expect(parseEmailAddress(text).ok).toBe(true));
  it.each(['intake.example', '@intake.example', 'a@', 'a b@x.example', 'a..b@x.example', 'a@x.example.', '"q"@x.example', 'ä@x.example'])(
    'rejects intake %j', (text) => expect(parseEmailAddress(text).ok).toBe(false));

  it.each([
    ['User@Example.COM', { kind: 'exact', local: 'user', domain: 'example.com' }],
    ['@example.com', { kind: 'domain', domain: 'example.com' }],
    ['@.example.com', { kind: 'subdomain', domain: 'example.com' }],
    ['postmaster@', { kind: 'local', local: 'postmaster' }],
    ['@[192.0.2.1]', { kind: 'domain', domain: '[192.0.2.1]' }],
  ])('pattern %s', (text, pattern) => expect(value(parseAddressPattern(text))).toEqual(pattern));

  it.each(['example.com', '@', '@.', '@..example.com', 'a@@b', '.a@b.example', 'a b@c', '@.[192.0.2.1]', '@-bad.example', '@exämple.com'])(
    'rejects pattern %j', (text) => expect(parseAddressPattern(text).ok).toBe(false));
});

describe('CIDRs', () => {
  it.each([
    ['10.0.0.0/8', 4, 8], ['192.0.2.7', 4, 32], ['0.0.0.0/0', 4, 0], ['2001:db8::/32', 6, 32], ['::1', 6, 128],
    ['::/0', 6, 0], ['::ffff:10.0.0.0/104', 6, 104], ['fe80::/10', 6, 10],
  ])('%s', (text, family, prefix) => {
    const r = parseCidr(text);
    expect(r.ok && [r.value.family, r.value.prefix]).toEqual([family, prefix]);
  });

  it.each(['10.1.2.3/8', '10.0.0.0/33', '256.0.0.0/8', '10.0.0/8', '2001:db8::1/32', '::/129', 'fe80::1%eth0', '10.0.0.0/', '10.0.0.0/08x', 'x'])(
    'rejects %j', (text) => expect(parseCidr(text).ok).toBe(false));

  it('expands IPv6 forms, embedded IPv4 included', () => {
    expect(Array.from(ipBytes('::ffff:192.0.2.1')!.bytes)).toEqual([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 192, 0, 2, 1]);
    expect(Array.from(ipBytes('2001:db8::1')!.bytes)).toEqual([0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
    expect(Array.from(ipBytes('1:2:3:4:5:6:7:8')!.bytes)).toEqual([0, 1, 0, 2, 0, 3, 0, 4, 0, 5, 0, 6, 0, 7, 0, 8]);
    expect(ipBytes('1:2:3:4:5:6:7:8:9')).toBeUndefined();
    expect(ipBytes('192.0.2.1')).toEqual({ family: 4, bytes: Uint8Array.from([192, 0, 2, 1]) });
  });
});

describe('schema', () => {
  it('every default parses and lies within its bounds', () => {
    for (const spec of SCHEMA) {
      const r = parseValue(spec, spec.default);
      expect([spec.key, r.ok]).toEqual([spec.key, true]);
    }
  });

  it('every key has a one-line doc and a unique key per section', () => {
    const seen = new Set<string>();
    for (const spec of SCHEMA) {
      expect(spec.doc).toMatch(/^[^\n]{10,}$/);
      expect(seen.has(`${spec.section}.${spec.key}`)).toBe(false);
      seen.add(`${spec.section}.${spec.key}`);
    }
  });

  it('bounds are inclusive', () => {
    const age = SCHEMA.find((k) => k.key === 'max_queue_age')!;
    expect(parseValue(age, '1s').ok).toBe(true);
    expect(parseValue(age, '999ms').ok).toBe(false);
    expect(parseValue(age, '1h').ok).toBe(true);
    expect(parseValue(age, '3601s').ok).toBe(false);
  });
});
