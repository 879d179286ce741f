/**
 * Routing without any DNS server: relay parsing, MX preference order and shuffling, implicit MX,
 * null MX, NXDOMAIN, soft failures, A/AAAA per host, the 30 s cache and shared lookups.
 */
import { DnsFailure, Router, orderMx, type DnsResolverLike, type RouterOptions } from '../../../lib/forwarder/route';
import { RELAY_FORMS, parseRelay } from '../../../lib/util/net-address';
import { ManualClock } from '../../../lib/util/clock';
import { relay } from '../../support/config-values';

type Answer = unknown[] | string; // a string is an error code
interface Zone { mx?: Record<string, Answer>; a?: Record<string, Answer>; aaaa?: Record<string, Answer> }

function fakeResolver(zone: Zone): DnsResolverLike & { queries: string[] } {
  const queries: string[] = [];
  const answer = <T>(table: Record<string, Answer> | undefined, type: string, name: string): Promise<T> => {
    queries.push(`${type} ${name}`);
    const a = table?.[name] ?? 'ENOTFOUND';
    if (typeof a === 'string') return Promise.reject(Object.assign(new Error(`${type} ${a} ${name}`), { code: a, syscall: `query${type}` }));
    return Promise.resolve(a as T);
  };
  return {
    queries,
    resolveMx: (n) => answer(zone.mx, 'Mx', n),
    resolve4: (n) => answer(zone.a, 'A', n),
    resolve6: (n) => answer(zone.aaaa, 'Aaaa', n),
  };
}

const fixedRandom = (): number => 0.5;

// The router takes the RelaySpec the config loader parsed (util/net-address's parser, the only one).
describe('parseRelay', () => {
  it.each([
    ['[192.0.2.1]:2525', '192.0.2.1', 2525, true],
    ['[192.0.2.1]', '192.0.2.1', 25, true],
    ['[::1]:26', '::1', 26, true],
    ['relay.example.test:587', 'relay.example.test', 587, false],
    ['relay.example.test', 'relay.example.test', 25, false],
  ])('%s', (text, host, port, bracketed) => {
    expect(parseRelay(text)).toEqual({ ok: true, value: { host, port, bracketed } });
  });

  it.each(['', 'a:b:c', 'host:0', 'host:70000', '[1.2.3.4]:x', 'ho st'])('rejects %j', (text) => {
    expect(parseRelay(text)).toMatchObject({ ok: false, expected: RELAY_FORMS });
    expect(RELAY_FORMS).toBe('host, host:port, [ip] or [ip]:port');
  });
});

describe('orderMx', () => {
  it('sorts by preference and shuffles equal ones', () => {
    const recs = [{ exchange: 'c', priority: 20 }, { exchange: 'a', priority: 10 }, { exchange: 'b1', priority: 15 }, { exchange: 'b2', priority: 15 }];
    const seen = new Set<string>();
    for (let i = 0; i < 50; i += 1) {
      const order = orderMx(recs, Math.random);
      expect(order[0]).toBe('a');
      expect(order[3]).toBe('c');
      seen.add(order.slice(1, 3).join(','));
    }
    expect(seen).toEqual(new Set(['b1,b2', 'b2,b1']));
  });
});

describe('Router', () => {
  const zone: Zone = {
    mx: {
      'intake.test': [{ exchange: 'mx2.intake.test', priority: 20 }, { exchange: 'mx1.intake.test', priority: 10 }],
      'null.test': [{ exchange: '', priority: 0 }],
      'nomx.test': 'ENODATA',
      'servfail.test': 'ESERVFAIL',
      'timeout.test': 'ETIMEOUT',
      'dangling.test': [{ exchange: 'gone.dangling.test', priority: 10 }],
      'noaddr.test': 'ENODATA',
    },
    a: { 'mx1.intake.test': ['127.0.0.1'], 'mx2.intake.test': ['127.0.0.2'], 'nomx.test': ['127.0.0.3'], 'relay.test': ['127.0.0.9'], 'noaddr.test': 'ENODATA' },
    aaaa: { 'mx1.intake.test': ['::1'], 'mx2.intake.test': 'ENODATA', 'nomx.test': 'ENODATA', 'relay.test': 'ENODATA', 'noaddr.test': 'ENODATA' },
  };

  const router = (opts: RouterOptions = {}, r = fakeResolver(zone), clock = new ManualClock()) =>
    ({ r, clock, router: new Router(r, clock, opts, fixedRandom) });

  it('MX hosts in preference order, IPv4 before IPv6, on the MX port', async () => {
    const { router: rt } = router({ mxPort: 2525 });
    const route = await rt.route('Intake.Test');
    expect(route.kind).toBe('mx');
    expect(route.hosts.map((h) => [h.name, h.port, h.addresses])).toEqual([
      ['mx1.intake.test', 2525, ['127.0.0.1', '::1']],
      ['mx2.intake.test', 2525, ['127.0.0.2']],
    ]);
  });

  it('implicit MX when the domain has no MX records (NODATA)', async () => {
    const route = await router().router.route('nomx.test');
    expect(route.kind).toBe('implicit');
    expect(route.hosts.map((h) => [h.name, h.port, h.addresses])).toEqual([['nomx.test', 25, ['127.0.0.3']]]);
  });

  it.each([
    ['null.test', /null MX/, true],
    ['missing.test', /NXDOMAIN/, true],
    ['servfail.test', /ESERVFAIL/, false],
    ['timeout.test', /ETIMEOUT/, false],
    ['dangling.test', /address of gone\.dangling\.test: NXDOMAIN/, true],
    ['noaddr.test', /no A\/AAAA record/, true],
  ])('%s fails with %s (hard: %s)', async (domain, message, hard) => {
    const p = router().router.route(domain);
    await expect(p).rejects.toBeInstanceOf(DnsFailure);
    await expect(p).rejects.toMatchObject({ code: 'EDNS', hard, message: expect.stringMatching(message) });
  });

  it('a relay skips MX lookups; a named relay is resolved through the same resolver', async () => {
    const { router: rt, r } = router({ relay: relay('relay.test:2526') });
    const route = await rt.route('intake.test');
    expect(route.kind).toBe('relay');
    expect(route.hosts.map((h) => [h.name, h.port, h.addresses])).toEqual([['relay.test', 2526, ['127.0.0.9']]]);
    expect(r.queries.some((q) => q.startsWith('Mx'))).toBe(false);
  });

  it('an IP relay needs no lookup at all', async () => {
    const { router: rt, r } = router({ relay: relay('[127.0.0.1]:2525') });
    const route = await rt.route('intake.test');
    expect(route.hosts).toEqual([{ name: '127.0.0.1', port: 2525, addresses: ['127.0.0.1'] }]);
    expect(r.queries).toEqual([]);
  });

  it('an address-literal intake domain goes straight to that address', async () => {
    const route = await router({ mxPort: 2525 }).router.route('[127.0.0.1]');
    expect(route.kind).toBe('literal');
    expect(route.hosts[0]).toMatchObject({ name: '127.0.0.1', port: 2525 });
  });

  it('keeps a host whose address lookup failed, with the failure, when another host resolves', async () => {
    const z: Zone = { ...zone, mx: { 'x.test': [{ exchange: 'bad.x.test', priority: 5 }, { exchange: 'mx1.intake.test', priority: 10 }] } };
    const route = await router({}, fakeResolver(z)).router.route('x.test');
    expect(route.hosts[0]).toMatchObject({ name: 'bad.x.test', addresses: [] });
    expect(route.hosts[0]!.failure).toBeInstanceOf(DnsFailure);
    expect(route.hosts[1]!.addresses).toEqual(['127.0.0.1', '::1']);
  });

  it('caches a good route for 30 s and shares a lookup in flight', async () => {
    const { router: rt, r, clock } = router();
    await Promise.all([rt.route('intake.test'), rt.route('intake.test')]);
    const n = r.queries.length;
    expect(r.queries.filter((q) => q.startsWith('Mx'))).toHaveLength(1);
    clock.advance(29_999);
    await rt.route('intake.test');
    expect(r.queries).toHaveLength(n);
    clock.advance(1);
    await rt.route('intake.test');
    expect(r.queries.length).toBeGreaterThan(n);
  });

  it('does not cache failures', async () => {
    const { router: rt, r } = router();
    await expect(rt.route('servfail.test')).rejects.toThrow();
    await expect(rt.route('servfail.test')).rejects.toThrow();
    expect(r.queries.filter((q) => q === 'Mx servfail.test')).toHaveLength(2);
  });
});
