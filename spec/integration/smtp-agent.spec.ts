/**
 * The SMTP delivery agent (lib/forwarder/smtp-agent.ts over lib/smtp) against a real smtp-server
 * intake with scripted replies on loopback: delivery byte-exact over STARTTLS (8-bit and 5 MB
 * copies), servers without PIPELINING or 8BITMIME, SIZE, every reply class, MX order and next MX,
 * DNS failures, TLS failures, timeouts, a drop mid-DATA, 421, demand and idle close, DCIDs,
 * events, abort. Names resolve through a fake resolver: no DNS query leaves the test.
 */
import * as net from 'node:net';
import { SmtpAgent, type SmtpAgentDeps } from '../../lib/forwarder/smtp-agent';
import type { DeliveryResult, QueuedCopy } from '../../lib/forwarder/delivery-agent';
import type { ConnectionEvent, DnsEvent } from '../../lib/forwarder/events';
import type { DnsResolverLike } from '../../lib/forwarder/route';
import type { ForwarderOptions } from '../../lib/forwarder/types';
import { systemClock } from '../../lib/util/clock';
import { loopbackOptions, until } from '../support/forwarder-harness';
import { ScriptedIntake, SilentServer, closedPort, type IntakeOptions } from '../support/scripted-intake';

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
    const { agent, events, starts } = rig({ relay: `[127.0.0.1]:${server.port}` });
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
    const { agent } = rig({ relay: `[127.0.0.1]:${server.port}` });
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
