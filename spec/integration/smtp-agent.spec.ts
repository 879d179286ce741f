/**
 * The SMTP delivery agent (lib/forwarder/smtp-agent.ts over lib/smtp) against a real smtp-server
 * intake with scripted replies on loopback: delivery byte-exact over STARTTLS (8-bit and 5 MB
 * copies), servers without PIPELINING or 8BITMIME, SIZE, every reply class, MX order and next MX,
 * DNS failures, TLS failures, timeouts, a drop mid-DATA, 421, demand and idle close, DCIDs,
 * events, abort. Names resolve through a fake resolver: no DNS query leaves the test.
 */
import { SmtpAgent, type SmtpAgentDeps } from '../../lib/forwarder/smtp-agent';
import type { DeliveryResult, QueuedCopy } from '../../lib/forwarder/delivery-agent';
import type { ConnectionEvent, DnsEvent } from '../../lib/forwarder/events';
import type { DnsResolverLike } from '../../lib/forwarder/route';
import type { ForwarderOptions } from '../../lib/forwarder/types';
import { ManualClock, systemClock } from '../../lib/util/clock';
import { IDLE_CLOSE_MS } from '../../lib/forwarder/intake-pool';
import { loopbackOptions, until } from '../support/forwarder-harness';
import { ScriptedIntake, SilentServer, closedPort, type IntakeOptions } from '../support/scripted-intake';
import { relay } from '../support/config-values';

jest.setTimeout(30_000);

let mid = 1000;
function copy(intakeAddress: string, raw: Buffer | Buffer[], body?: QueuedCopy['body']): QueuedCopy {
  mid += 1;
  const c: QueuedCopy = { id: `Q${mid}.1`, queueId: `Q${mid}`, messageId: `<m${mid}@example.test>`, intakeAddress, raw, mid };
  if (body) c.body = body;
  return c;
}

function message(body: string | Buffer, subject = 'journal'): Buffer {
  return Buffer.concat([Buffer.from(`From: gw@example.test\r\nTo: journal@intake.test\r\nSubject: ${subject}\r\n\r\n`, 'latin1'), Buffer.isBuffer(body) ? body : Buffer.from(body, 'latin1')]);
}

/** A resolver with a fixed zone: name → MX list / addresses; anything else NXDOMAIN. */
function fakeResolver(zone: Record<string, { mx?: [number, string][]; a?: string[]; fail?: string }>): DnsResolverLike {
  const err = (code: string): Error => Object.assign(new Error(code), { code });
  const entry = (name: string): { mx?: [number, string][]; a?: string[]; fail?: string } => {
    const e = zone[name.toLowerCase()];
    if (!e) throw err('ENOTFOUND');
    if (e.fail) throw err(e.fail);
    return e;
  };
  return {
    resolveMx: async (name) => {
      const e = entry(name);
      if (!e.mx) throw err('ENODATA');
      return e.mx.map(([priority, exchange]) => ({ priority, exchange }));
    },
    resolve4: async (name) => {
      const e = entry(name);
      if (!e.a) throw err('ENODATA');
      return e.a;
    },
    resolve6: async (name) => {
      entry(name);
      throw err('ENODATA');
    },
  };
}

interface Rig {
  agent: SmtpAgent;
  events: (ConnectionEvent | DnsEvent)[];
  starts: { id: string; dcid: number }[];
}

const agents: SmtpAgent[] = [];
const servers: { close(): Promise<void> }[] = [];

function rig(options: Partial<ForwarderOptions>, deps: Partial<SmtpAgentDeps> = {}): Rig {
  const events: (ConnectionEvent | DnsEvent)[] = [];
  const starts: { id: string; dcid: number }[] = [];
  const agent = new SmtpAgent(loopbackOptions({ tlsServername: 'intake.test', ...options }), {
    clock: systemClock,
    onEvent: (e) => events.push(e),
    onDeliveryStart: (c, dcid) => starts.push({ id: c.id, dcid }),
    ...deps,
  });
  agents.push(agent);
  return { agent, events, starts };
}

async function intake(o: IntakeOptions = {}): Promise<ScriptedIntake> {
  const s = await ScriptedIntake.start(o);
  servers.push(s);
  return s;
}

function ctx(signal = new AbortController().signal): { attempt: number; signal: AbortSignal } {
  return { attempt: 1, signal };
}

afterEach(async () => {
  for (const a of agents.splice(0)) await a.close(500);
  for (const s of servers.splice(0)) await s.close();
});

describe('SmtpAgent against smtp-server (scripted intake)', () => {
  it('delivers over STARTTLS, byte-exact, with the null sender, and reports DCID, TLS and delivery start', async () => {
    const server = await intake();
    const { agent, events, starts } = rig({ relay: relay(`[127.0.0.1]:${server.port}`) });
    const raw = message('line one\r\n.dot line\r\nlast\r\n');
    const c = copy('journal@intake.test', raw);
    const r = await agent.deliver(c, ctx());
    expect(r).toMatchObject({ outcome: 'delivered', dsn: '2.0.0', phase: 'message', dcid: 1 });
    expect(r.reply).toMatch(/^250 2\.0\.0 Ok: queued as TEST/);
    expect(server.received).toHaveLength(1);
    expect(server.received[0]!.raw.equals(raw)).toBe(true);
    expect(server.received[0]!).toMatchObject({ mailFrom: '', rcptTo: ['journal@intake.test'], secure: true });
    expect(server.received[0]!.tlsProtocol).toMatch(/^TLSv1\.[23]$/);
    expect(starts).toEqual([{ id: c.id, dcid: 1 }]);
    expect(events.map((e) => e.type)).toEqual(['connection_opened', 'tls_established']);
    expect(events[0]).toMatchObject({ dcid: 1, destination: 'intake.test', ip: '127.0.0.1', port: server.port, localAddress: '127.0.0.1' });
  });

  it('sends an 8-bit copy with BODY=8BITMIME and a 5 MB copy in pieces, both byte-exact', async () => {
    const server = await intake();
    const { agent } = rig({ relay: relay(`[127.0.0.1]:${server.port}`) });
    const eight = message(Buffer.from('Grüße aus Köln\r\n\u00ff\u00fe raw bytes\r\n', 'latin1'));
    const r1 = await agent.deliver(copy('journal@intake.test', eight), ctx());
    expect(r1.outcome).toBe('delivered');
    const line = `${'abcdefghij'.repeat(7)}\r\n.${'z'.repeat(20)}\r\n`;
    const big = message(line.repeat(Math.ceil((5 * 1024 * 1024) / line.length)));
    const pieces = [big.subarray(0, 1000), big.subarray(1000, 3_000_001), big.subarray(3_000_001)];
    const r2 = await agent.deliver(copy('journal@intake.test', pieces), ctx());
    expect(r2.outcome).toBe('delivered');
    expect(server.received.map((m) => m.raw.length)).toEqual([eight.length, big.length]);
    expect(server.received[0]!.raw.equals(eight)).toBe(true);
    expect(server.received[1]!.raw.equals(big)).toBe(true);
  });
});

describe('SmtpAgent: what the server offers', () => {
  it('talks to a server without PIPELINING one command at a time and delivers', async () => {
    const server = await intake({ hidePipelining: true });
    const { agent } = rig({ relay: relay(`[127.0.0.1]:${server.port}`) });
    const raw = message('no pipelining here\r\n');
    expect(await agent.deliver(copy('journal@intake.test', raw), ctx())).toMatchObject({ outcome: 'delivered' });
    expect(server.received[0]!.raw.equals(raw)).toBe(true);
  });

  it('never sends an 8-bit copy to a server without 8BITMIME (hard, nothing sent); a 7-bit copy still goes', async () => {
    const server = await intake({ hide8BitMime: true });
    const { agent } = rig({ relay: relay(`[127.0.0.1]:${server.port}`) });
    const r = await agent.deliver(copy('journal@intake.test', message(Buffer.from('caf\u00e9\r\n', 'latin1'))), ctx());
    expect(r).toMatchObject({ outcome: 'hard', kind: 'no_8bitmime', dsn: '5.6.3', phase: 'mail', dcid: 1 });
    expect(r.detail).toMatch(/8BITMIME/);
    expect(server.transactions).toBe(0);
    // The same connection takes the next copy.
    expect(await agent.deliver(copy('journal@intake.test', message('plain ascii\r\n')), ctx())).toMatchObject({ outcome: 'delivered', dcid: 1 });
  });

  it('sends a binary copy (lines over 998 bytes) as 8BITMIME over DATA where BINARYMIME/CHUNKING are not offered', async () => {
    const server = await intake();
    const { agent } = rig({ relay: relay(`[127.0.0.1]:${server.port}`) });
    const raw = message(`${'y'.repeat(3000)}\r\n`);
    expect(await agent.deliver(copy('journal@intake.test', raw, 'binary'), ctx())).toMatchObject({ outcome: 'delivered' });
    expect(server.received[0]!.raw.equals(raw)).toBe(true);
  });

  it('refuses a copy over the server\'s SIZE before any data: hard 5.3.4', async () => {
    const server = await intake({ size: 1000 });
    const { agent } = rig({ relay: relay(`[127.0.0.1]:${server.port}`) });
    const r = await agent.deliver(copy('journal@intake.test', message('z'.repeat(2000))), ctx());
    expect(r).toMatchObject({ outcome: 'hard', kind: 'size', dsn: '5.3.4', phase: 'mail' });
    expect(server.transactions).toBe(0);
  });
});

describe('SmtpAgent: replies and the retry table', () => {
  const cases: [string, IntakeOptions['replies'], Partial<DeliveryResult>][] = [
    ['550 at MAIL: hard', [{ stage: 'mail', code: 550, message: '5.7.1 sender refused' }], { outcome: 'hard', kind: 'smtp_5xx', dsn: '5.7.1', phase: 'mail' }],
    ['452 at RCPT: soft', [{ stage: 'rcpt', code: 452, message: '4.2.2 mailbox full' }], { outcome: 'soft', kind: 'smtp_4xx', dsn: '4.2.2', phase: 'rcpt' }],
    ['503 at RCPT: soft (special)', [{ stage: 'rcpt', code: 503, message: '5.5.1 bad sequence' }], { outcome: 'soft', kind: 'smtp_special', phase: 'rcpt' }],
    ['552 after DATA: soft (special)', [{ stage: 'data', code: 552, message: '5.3.4 too big' }], { outcome: 'soft', kind: 'smtp_special', dsn: '5.3.4', phase: 'message' }],
    ['554 after DATA: hard', [{ stage: 'data', code: 554, message: '5.6.0 content refused' }], { outcome: 'hard', kind: 'smtp_5xx', dsn: '5.6.0', phase: 'message' }],
    ['451 after DATA: soft', [{ stage: 'data', code: 451, message: '4.3.0 try later' }], { outcome: 'soft', kind: 'smtp_4xx', phase: 'message' }],
  ];
  it.each(cases)('%s, then the same connection delivers the next copy after RSET', async (_name, replies, expected) => {
    const server = await intake({ replies });
    const { agent, events } = rig({ relay: relay(`[127.0.0.1]:${server.port}`) });
    const r = await agent.deliver(copy('journal@intake.test', message('x\r\n')), ctx());
    expect(r).toMatchObject({ ...expected, dcid: 1 });
    expect(r.reply).toMatch(/^\d{3} /);
    expect(await agent.deliver(copy('journal@intake.test', message('y\r\n')), ctx())).toMatchObject({ outcome: 'delivered', dcid: 1 });
    expect(server.connectionsTotal).toBe(1);
    expect(events.map((e) => `${e.type}:${'dcid' in e ? e.dcid : '-'}`)).toEqual(['connection_opened:1', 'tls_established:1']);
  });

  it('421 instead of a greeting: soft, from the greeting phase', async () => {
    const server = await intake({ refuseConnections: 1 });
    const { agent, events } = rig({ relay: relay(`[127.0.0.1]:${server.port}`) });
    expect(await agent.deliver(copy('journal@intake.test', message('x\r\n')), ctx())).toMatchObject({ outcome: 'soft', kind: 'smtp_4xx', phase: 'greeting', dcid: 1 });
    expect(await agent.deliver(copy('journal@intake.test', message('x\r\n')), ctx())).toMatchObject({ outcome: 'delivered', dcid: 2 });
    expect(events.filter((e) => e.type === 'connection_closed').map((e) => e.dcid)).toContain(1);
  });
});

describe('SmtpAgent: TLS is required and verified', () => {
  const cases: [string, IntakeOptions, RegExp][] = [
    ['untrusted certificate', { cert: 'untrusted' }, /TLS Error/],
    ['certificate for another name', { cert: 'wrong-name' }, /TLS Error/],
    ['TLS 1.1 at most', { minVersion: 'TLSv1', maxVersion: 'TLSv1.1' }, /TLS Error/],
    // The detail is the gateway's 'TLS Error'; the server's refusal is the reply.
    ['STARTTLS not offered nor accepted', { noStartTls: true }, /^TLS Error: 5\d\d /],
  ];
  it.each(cases)('%s: hard, never sent in plaintext', async (_name, o, detail) => {
    const server = await intake(o);
    const { agent, events } = rig({ relay: relay(`[127.0.0.1]:${server.port}`) });
    const r = await agent.deliver(copy('journal@intake.test', message('secret\r\n')), ctx());
    expect(r).toMatchObject({ outcome: 'hard', kind: 'tls', dcid: 1 });
    expect(`${r.detail}: ${r.reply}`).toMatch(detail);
    expect(server.transactions).toBe(0);
    expect(server.received).toHaveLength(0);
    if (!o.noStartTls) expect(events).toContainEqual(expect.objectContaining({ type: 'connection_error', dcid: 1, details: 'tls' }));
  });

  it('checks the certificate against the MX name itself when no test servername is set', async () => {
    const server = await intake();
    const resolver = fakeResolver({ 'intake.test': { mx: [[10, 'mx1.intake.test']] }, 'mx1.intake.test': { a: ['127.0.0.1'] }, 'wrong.test': { mx: [[10, 'mx.wrong.test']] }, 'mx.wrong.test': { a: ['127.0.0.1'] } });
    const { agent } = rig({ tlsServername: undefined, mxPort: server.port }, { resolver });
    expect(await agent.deliver(copy('journal@intake.test', message('x\r\n')), ctx())).toMatchObject({ outcome: 'delivered' });
    expect(await agent.deliver(copy('journal@wrong.test', message('x\r\n')), ctx())).toMatchObject({ outcome: 'hard', kind: 'tls' });
  });

  it('resumes the TLS session on the next connection to the same host', async () => {
    const server = await intake();
    const { agent, events } = rig({ relay: relay(`[127.0.0.1]:${server.port}`), messagesPerConnection: 1 });
    for (let i = 0; i < 3; i++) expect(await agent.deliver(copy('journal@intake.test', message('x\r\n')), ctx())).toMatchObject({ outcome: 'delivered' });
    const tls = events.filter((e): e is Extract<ConnectionEvent, { type: 'tls_established' }> => e.type === 'tls_established');
    expect(tls).toHaveLength(3);
    expect(tls[0]!.resumed).toBe(false);
    expect(tls.slice(1).some((t) => t.resumed === true)).toBe(true);
  });
});

describe('SmtpAgent: network failures are soft', () => {
  it('a refused connection: soft, connect phase, with a connection error event', async () => {
    const port = await closedPort();
    const { agent, events } = rig({ relay: relay(`[127.0.0.1]:${port}`) });
    expect(await agent.deliver(copy('journal@intake.test', message('x\r\n')), ctx())).toMatchObject({ outcome: 'soft', kind: 'network', dsn: '4.4.1', phase: 'connect', dcid: 1 });
    expect(events).toEqual([expect.objectContaining({ type: 'connection_error', dcid: 1, details: 'refused', ip: '127.0.0.1', port })]);
  });

  it('a dead intake with demand and several copies: one connection per copy\'s attempt, no reconnect storm', async () => {
    const port = await closedPort();
    const { agent, events } = rig({ relay: relay(`[127.0.0.1]:${port}`) });
    agent.demand('journal@intake.test', 3);
    const results = await Promise.all([1, 2, 3, 4, 5].map(() => agent.deliver(copy('journal@intake.test', message('x\r\n')), ctx())));
    expect(results.map((r) => r.outcome)).toEqual(Array(5).fill('soft'));
    // The demand is still 3 (the copies wait for their retry): no connection opens for it alone.
    await new Promise((r) => setTimeout(r, 300));
    const errors = events.filter((e) => e.type === 'connection_error');
    expect(errors).toHaveLength(5);
    expect(new Set(results.map((r) => r.dcid)).size).toBe(5);
    expect(agent.stats().connections).toBe(0);
  });

  it('a server that never greets: soft timeout in the greeting phase', async () => {
    const silent = await SilentServer.start();
    servers.push(silent);
    const { agent, events } = rig({ relay: relay(`[127.0.0.1]:${silent.port}`), commandTimeout: 300 });
    expect(await agent.deliver(copy('journal@intake.test', message('x\r\n')), ctx())).toMatchObject({ outcome: 'soft', kind: 'network', phase: 'greeting' });
    expect(events).toContainEqual(expect.objectContaining({ type: 'connection_error', details: 'timeout' }));
  });

  it('a reply that never comes after the data: soft timeout in the message phase', async () => {
    const server = await intake({ holdMs: 3000 });
    const { agent } = rig({ relay: relay(`[127.0.0.1]:${server.port}`), commandTimeout: 400 });
    expect(await agent.deliver(copy('journal@intake.test', message('x\r\n')), ctx())).toMatchObject({ outcome: 'soft', kind: 'network', phase: 'message' });
  });

  it('a connection dropped mid-DATA: soft, message phase', async () => {
    const server = await intake({ holdMs: 2000 });
    const { agent } = rig({ relay: relay(`[127.0.0.1]:${server.port}`) });
    const p = agent.deliver(copy('journal@intake.test', message('x\r\n')), ctx());
    await until(() => server.transactions === 1, 5000, 'the transaction');
    await new Promise((r) => setTimeout(r, 100));
    for (const s of servers.splice(0)) await s.close();
    expect(await p).toMatchObject({ outcome: 'soft', kind: 'network', phase: 'message' });
  });
});

describe('SmtpAgent: routing', () => {
  it('tries the next MX when the first refuses, in preference order', async () => {
    const server = await intake();
    const resolver = fakeResolver({
      'intake.test': { mx: [[20, 'mx2.intake.test'], [10, 'mx1.intake.test']] },
      'mx1.intake.test': { a: ['127.0.0.2'] },
      'mx2.intake.test': { a: ['127.0.0.1'] },
    });
    const { agent, events } = rig({ tlsServername: undefined, mxPort: server.port }, { resolver });
    expect(await agent.deliver(copy('journal@intake.test', message('x\r\n')), ctx())).toMatchObject({ outcome: 'delivered', dcid: 2 });
    expect(events[0]).toMatchObject({ type: 'connection_error', dcid: 1, host: 'mx1.intake.test', ip: '127.0.0.2' });
    expect(events[1]).toMatchObject({ type: 'connection_opened', dcid: 2, host: 'mx2.intake.test' });
  });

  it('uses the domain itself without MX records (implicit MX)', async () => {
    const server = await intake();
    const resolver = fakeResolver({ 'intake.test': { a: ['127.0.0.1'] } });
    const { agent } = rig({ tlsServername: undefined, mxPort: server.port }, { resolver });
    expect(await agent.deliver(copy('journal@intake.test', message('x\r\n')), ctx())).toMatchObject({ outcome: 'delivered' });
  });

  const dnsCases: [string, Record<string, { mx?: [number, string][]; a?: string[]; fail?: string }>, Partial<DeliveryResult>, string][] = [
    ['NXDOMAIN: hard 5.1.2 Bad destination host', {}, { outcome: 'hard', kind: 'dns_hard', dsn: '5.1.2', detail: 'Bad destination host', phase: 'route' }, 'NXDomain'],
    ['null MX: hard 5.1.2', { 'intake.test': { mx: [[0, '.']] } }, { outcome: 'hard', kind: 'dns_hard', dsn: '5.1.2' }, 'Null MX'],
    ['SERVFAIL: soft', { 'intake.test': { fail: 'ESERVFAIL' } }, { outcome: 'soft', kind: 'dns', phase: 'route' }, 'ServFail'],
  ];
  it.each(dnsCases)('%s, with a DNS event naming the copy', async (_name, zone, expected, word) => {
    const { agent, events } = rig({ tlsServername: undefined, mxPort: 1 }, { resolver: fakeResolver(zone) });
    const c = copy('journal@intake.test', message('x\r\n'));
    const r = await agent.deliver(c, ctx());
    expect(r).toMatchObject(expected);
    expect(r.dcid).toBeUndefined();
    expect(events).toEqual([expect.objectContaining({ type: 'dns_error', domain: 'intake.test', rrtype: 'MX', error: word, copy: expect.objectContaining({ copyId: c.id, mid: c.mid }) })]);
  });

  it('a bad intake address is a local hard failure', async () => {
    const { agent } = rig({ relay: relay('[127.0.0.1]:1') });
    expect(await agent.deliver(copy('no-at-sign', message('x\r\n')), ctx())).toMatchObject({ outcome: 'hard', kind: 'local' });
  });
});

describe('SmtpAgent: connections', () => {
  it('opens the demanded connections before any copy and closes them about 1 s after demand drops to 0', async () => {
    const server = await intake();
    const { agent } = rig({ relay: relay(`[127.0.0.1]:${server.port}`) });
    agent.demand('journal@intake.test', 3);
    await until(() => server.connectionsOpen === 3, 5000, '3 connections');
    expect(agent.stats()).toEqual({ connections: 3, byDomain: new Map([['intake.test', 3]]) });
    const results = await Promise.all([1, 2, 3, 4].map(() => agent.deliver(copy('journal@intake.test', message('x\r\n')), ctx())));
    expect(results.every((r) => r.outcome === 'delivered')).toBe(true);
    // The three kept open carried three copies at once; the fourth copy in flight got its own.
    expect(server.connectionsTotal).toBe(4);
    const dropped = Date.now();
    agent.demand('journal@intake.test', 0);
    await until(() => server.connectionsOpen === 0 && agent.stats().connections === 0, 5000, 'idle close');
    expect(Date.now() - dropped).toBeGreaterThanOrEqual(900);
  });

  it('closes an idle connection exactly IDLE_CLOSE_MS after demand drops to 0, on the injected clock', async () => {
    const server = await intake();
    const clock = new ManualClock();
    const { agent, events } = rig({ relay: relay(`[127.0.0.1]:${server.port}`) }, { clock });
    agent.demand('journal@intake.test', 1);
    await until(() => events.some((e) => e.type === 'tls_established'), 5000, 'TLS');
    await new Promise((r) => setTimeout(r, 200)); // the EHLO over TLS
    agent.demand('journal@intake.test', 0);
    clock.advance(IDLE_CLOSE_MS - 1);
    await new Promise((r) => setTimeout(r, 100));
    expect(server.connectionsOpen).toBe(1);
    clock.advance(1);
    await until(() => server.connectionsOpen === 0, 5000, 'the idle close');
    expect(events.at(-1)).toMatchObject({ type: 'connection_closed', delivered: 0 });
  });

  it('carries at most messagesPerConnection copies per connection', async () => {
    const server = await intake();
    const { agent } = rig({ relay: relay(`[127.0.0.1]:${server.port}`), messagesPerConnection: 2 });
    const dcids: (number | undefined)[] = [];
    for (let i = 0; i < 5; i++) dcids.push((await agent.deliver(copy('journal@intake.test', message('x\r\n')), ctx())).dcid);
    expect(dcids).toEqual([1, 1, 2, 2, 3]);
  });

  it('never opens more than maxConnections, whatever is handed over at once', async () => {
    const server = await intake({ holdMs: 50 });
    const { agent } = rig({ relay: relay(`[127.0.0.1]:${server.port}`), maxConnections: 2 });
    const results = await Promise.all(Array.from({ length: 8 }, () => agent.deliver(copy('journal@intake.test', message('x\r\n')), ctx())));
    expect(results.map((r) => r.outcome)).toEqual(Array(8).fill('delivered'));
    expect(server.connectionsPeak).toBeLessThanOrEqual(2);
    expect(new Set(results.map((r) => r.dcid)).size).toBeLessThanOrEqual(2);
  });

  it('takes DCIDs from deps.nextDcid', async () => {
    const server = await intake();
    let n = 500;
    const { agent } = rig({ relay: relay(`[127.0.0.1]:${server.port}`) }, { nextDcid: () => ++n });
    expect(await agent.deliver(copy('journal@intake.test', message('x\r\n')), ctx())).toMatchObject({ outcome: 'delivered', dcid: 501 });
  });

  it('aborting an attempt on the wire ends it as aborted at once and closes that connection', async () => {
    const server = await intake({ holdMs: 1500 });
    const { agent } = rig({ relay: relay(`[127.0.0.1]:${server.port}`) });
    const ac = new AbortController();
    const p = agent.deliver(copy('journal@intake.test', message('x\r\n')), ctx(ac.signal));
    await until(() => server.transactions === 1, 5000, 'the transaction');
    const aborted = Date.now();
    ac.abort(new Error('too old'));
    expect(await p).toMatchObject({ outcome: 'soft', kind: 'aborted', dcid: 1 });
    expect(Date.now() - aborted).toBeLessThan(1000);
    await until(() => agent.stats().connections === 0, 2000, 'the connection to close');
  });

  it('aborting a copy that waits for a connection resolves at once', async () => {
    const silent = await SilentServer.start();
    servers.push(silent);
    const { agent } = rig({ relay: relay(`[127.0.0.1]:${silent.port}`), commandTimeout: 5000 });
    const ac = new AbortController();
    const p = agent.deliver(copy('journal@intake.test', message('x\r\n')), ctx(ac.signal));
    await until(() => silent.connections === 1, 5000, 'the connection');
    ac.abort();
    expect(await p).toMatchObject({ outcome: 'soft', kind: 'aborted' });
  });

  it('a reconfigure that changes where copies go sends the copies still waiting under the new settings', async () => {
    const silent = await SilentServer.start();
    servers.push(silent);
    const server = await intake();
    const { agent } = rig({ relay: relay(`[127.0.0.1]:${silent.port}`), commandTimeout: 5000 });
    const p = agent.deliver(copy('journal@intake.test', message('x\r\n')), ctx());
    await until(() => silent.connections === 1, 5000, 'the connection to the silent server');
    agent.reconfigure(loopbackOptions({ tlsServername: 'intake.test', relay: relay(`[127.0.0.1]:${server.port}`), commandTimeout: 5000 }));
    expect(await p).toMatchObject({ outcome: 'delivered' });
    expect(server.received).toHaveLength(1);
  });

  it('close() ends a copy still waiting for a connection as aborted', async () => {
    const silent = await SilentServer.start();
    servers.push(silent);
    const { agent } = rig({ relay: relay(`[127.0.0.1]:${silent.port}`), commandTimeout: 5000 });
    const p = agent.deliver(copy('journal@intake.test', message('x\r\n')), ctx());
    await until(() => silent.connections === 1, 5000, 'the connection');
    const closing = agent.close(200);
    expect(await p).toMatchObject({ outcome: 'soft', kind: 'aborted' });
    await closing;
    expect(agent.stats().connections).toBe(0);
  });

  it('close() while the route lookup of a copy is under way: the copy still gets its result, no connection opens', async () => {
    const server = await intake();
    let answer!: () => void;
    const slowDns = new Promise<void>((r) => { answer = r; });
    const resolver = fakeResolver({ 'intake.test': { a: ['127.0.0.1'] } });
    const { agent } = rig({ mxPort: server.port }, {
      resolver: { ...resolver, resolveMx: async (name) => { await slowDns; return resolver.resolveMx(name); } },
    });
    const p = agent.deliver(copy('journal@intake.test', message('x\r\n')), ctx());
    await agent.close(200);
    answer();
    const hung = new Promise((r) => setTimeout(() => r('no result 2 s after close()'), 2000));
    expect(await Promise.race([p, hung])).toMatchObject({ outcome: 'hard', kind: 'local', detail: 'the forwarder is closing' });
    expect(agent.stats().connections).toBe(0);
    expect(server.connectionsTotal).toBe(0);
  });

  it('close() ends idle connections and later copies fail as local', async () => {
    const server = await intake();
    const { agent } = rig({ relay: relay(`[127.0.0.1]:${server.port}`) });
    expect(await agent.deliver(copy('journal@intake.test', message('x\r\n')), ctx())).toMatchObject({ outcome: 'delivered' });
    await agent.close();
    expect(agent.stats().connections).toBe(0);
    expect(await agent.deliver(copy('journal@intake.test', message('x\r\n')), ctx())).toMatchObject({ outcome: 'hard', kind: 'local' });
  });
});
