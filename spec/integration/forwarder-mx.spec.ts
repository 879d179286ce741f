/**
 * MX routing against a loopback DNS server of our own and a STARTTLS intake on 127.0.0.1
 * (mxPort = its port; 127.0.0.2 is an address where nothing listens, so it refuses): preference
 * order, failover to the next MX within one attempt, implicit MX, null MX, NXDOMAIN, SERVFAIL,
 * DNS timeout, and certificates checked against the MX host name.
 */
import { Forwarder, type ForwarderEvent, type ForwarderOptions } from '../../lib/forwarder';
import { MailLog } from '../../lib/status';
import { MemoryLogger } from '../../lib/util/logger';
import { TestDnsServer, type Zone } from '../support/dns-server';
import { ScriptedIntake } from '../support/scripted-intake';
import { copyEvents, loopbackOptions, settled, testCopy } from '../support/forwarder-harness';
import { relay } from '../support/config-values';

let intake: ScriptedIntake;
let dns: TestDnsServer;
const open: Forwarder[] = [];

beforeEach(async () => {
  intake = await ScriptedIntake.start({});
  dns = await TestDnsServer.start({});
});

afterEach(async () => {
  while (open.length) await open.pop()!.close();
  await dns.close();
  await intake.close();
});

function run(zone: Zone, overrides: Partial<ForwarderOptions> = {}) {
  dns.zone = zone;
  const logger = new MemoryLogger();
  const events: ForwarderEvent[] = [];
  const mailLog = new MailLog(logger);
  const fwd = new Forwarder(loopbackOptions({ dnsServers: [dns.address], mxPort: intake.port, ...overrides }), {
    logger, onEvent: (e) => { events.push(e); mailLog.observe(e); },
  });
  open.push(fwd);
  return { fwd, logger, events, lines: () => logger.lines.map((l) => l.message) };
}

const final = (events: ForwarderEvent[]) => {
  const e = copyEvents(events).find((x) => ['delivered', 'hard_bounce', 'dropped'].includes(x.type));
  return e && { kind: e.type, event: e };
};

describe('MX routing', () => {
  it('uses the most preferred MX and checks its certificate against the MX name', async () => {
    const { fwd, events, lines } = run({
      'intake.test': { mx: [[20, 'mx2.intake.test'], [10, 'mx1.intake.test']] },
      'mx1.intake.test': { a: ['127.0.0.1'] },
      'mx2.intake.test': { a: ['127.0.0.2'] },
    });
    fwd.offer(testCopy('journal@intake.test'));
    await settled(fwd);
    expect(final(events)?.kind).toBe('delivered');
    expect(intake.received).toHaveLength(1);
    expect(intake.received[0]!.servername).toBe('mx1.intake.test');
    expect(lines().filter((l) => l.startsWith('Connection Error'))).toEqual([]);
    expect(dns.queries).toEqual(expect.arrayContaining([{ name: 'intake.test', type: 'mx' }, { name: 'mx1.intake.test', type: 'a' }]));
  });

  it('fails over to the next MX within the same attempt when the first refuses connections', async () => {
    const { fwd, events, lines } = run({
      'intake.test': { mx: [[10, 'mx1.intake.test'], [5, 'mx2.intake.test']] },
      'mx1.intake.test': { a: ['127.0.0.1'] },
      'mx2.intake.test': { a: ['127.0.0.2'] },
    });
    fwd.offer(testCopy('journal@intake.test'));
    await settled(fwd);
    expect(final(events)?.kind).toBe('delivered');
    expect(events.filter((e) => e.type === 'attempt')).toHaveLength(1);
    expect(fwd.counters()).toMatchObject({ delivered: 1, softBounced: 0 });
    const l = lines();
    const refused = l.findIndex((x) => /^Connection Error: DCID \d+ domain: the\.tdc\.queue IP: 127\.0\.0\.2 port: \d+ details: refused interface: \S+ reason: .*ECONNREFUSED/.test(x));
    const connected = l.findIndex((x) => /^New SMTP DCID \d+ interface 127\.0\.0\.1 address 127\.0\.0\.1 port/.test(x));
    expect(refused).toBeGreaterThanOrEqual(0);
    expect(connected).toBeGreaterThan(refused);
    expect(intake.received[0]!.servername).toBe('mx1.intake.test');
  });

  it('delivers to the domain itself when it has no MX (implicit MX)', async () => {
    const { fwd, events } = run({ 'intake.test': { a: ['127.0.0.1'] } });
    fwd.offer(testCopy('journal@intake.test'));
    await settled(fwd);
    expect(final(events)?.kind).toBe('delivered');
    expect(intake.received[0]!.servername).toBe('intake.test');
  });

  it.each([
    ['a null MX', { 'intake.test': { mx: [[0, '.']], a: ['127.0.0.1'] } } as Zone, 'intake.test MX - Null MX'],
    ['NXDOMAIN', {} as Zone, 'intake.test MX - NXDomain'],
    ['an MX host that does not exist', { 'intake.test': { mx: [[10, 'gone.intake.test']] } } as Zone, 'gone.intake.test A - NXDomain'],
  ])('%s is a hard bounce 5.1.2 Bad destination host, no connection, with the gateway\'s DNS Error line', async (_name, zone, dnsLine) => {
    const { fwd, events, logger } = run(zone);
    const c = testCopy('journal@intake.test');
    fwd.offer(c);
    await settled(fwd);
    expect(final(events)?.kind).toBe('hard_bounce');
    expect(intake.connectionsTotal).toBe(0);
    expect(final(events)?.event.copy.copyId).toBe(c.id);
    expect(logger.matching(/^DNS Error /)).toEqual([`DNS Error ${dnsLine}`]);
    const [name, rrtype, , ...word] = dnsLine.split(' ');
    const line = logger.matching(/^Hard bounced/);
    expect(line).toEqual([`Hard bounced - 5.1.2 - Bad destination host ('000', ['DNS Hard Error looking up ${name} (${rrtype}) : ${word.join(' ')}'])`]);
    expect(logger.matching(/delivery failed to Cisco Secure Email Threat Defense: Hard Bounced\.$/)).toHaveLength(1);
  });

  it.each([
    ['SERVFAIL', 'SERVFAIL' as const, 'ServFail'],
    ['no answer (timeout)', 'TIMEOUT' as const, 'Timeout'],
  ])('%s: one retry, then removed (hard bounced) with the DNS failure', async (_name, failure, why) => {
    const { fwd, events, logger } = run({ 'intake.test': { mx: failure } }, { connectTimeout: 300 });
    fwd.offer(testCopy('journal@intake.test'));
    await settled(fwd);
    expect(final(events)?.kind).toBe('dropped');
    expect(fwd.counters()).toMatchObject({ hardBounced: 1, dropped: 0 });
    expect(dns.queries.filter((q) => q.name === 'intake.test' && q.type === 'mx')).toHaveLength(2);
    expect(logger.matching(/^DNS Error /)).toEqual([`DNS Error intake.test MX - ${why}`, `DNS Error intake.test MX - ${why}`]);
    expect(logger.matching(/^Hard bounced/)).toEqual([`Hard bounced - 5.4.3 - DNS failure ('000', ['DNS Soft Error looking up intake.test (MX) : ${why}'])`]);
    expect(intake.connectionsTotal).toBe(0);
  });

  it('refuses an MX whose certificate does not name it (TLS hard bounce)', async () => {
    const { fwd, events, logger } = run({
      'intake.test': { mx: [[10, 'mx.other.test']] },
      'mx.other.test': { a: ['127.0.0.1'] },
    });
    fwd.offer(testCopy('journal@intake.test'));
    await settled(fwd);
    expect(final(events)?.kind).toBe('hard_bounce');
    expect(intake.transactions).toBe(0);
    expect(logger.matching(/^Connection Error: DCID \d+ domain: the\.tdc\.queue IP: 127\.0\.0\.1 port: \d+ details: tls interface: \S+ reason: ERR_TLS_CERT_ALTNAME_INVALID: .*mx\.other\.test/)).toHaveLength(1);
  });

  it('resolves a named relay through the same DNS server and skips MX lookups', async () => {
    const { fwd, events } = run({ 'relay.intake.test': { a: ['127.0.0.1'] } }, { relay: relay(`relay.intake.test:${intake.port}`) });
    fwd.offer(testCopy('journal@elsewhere.test'));
    await settled(fwd);
    expect(final(events)?.kind).toBe('delivered');
    expect(intake.received[0]!.servername).toBe('relay.intake.test');
    expect(dns.queries.some((q) => q.type === 'mx')).toBe(false);
  });
});
