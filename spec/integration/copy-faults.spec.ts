/**
 * Faults on the copy's path with real Postfix in front (client → Postfix → TdcApp milter → forwarder):
 * intake refusing connections, hanging after its greeting, dropping mid-DATA, answering 4xx and 5xx,
 * an untrusted TLS certificate, DNS failing (SERVFAIL from a loopback DNS server), the queue full. In
 * each, Postfix delivers every original promptly and every copy ends in exactly one final log line;
 * copies offered = delivered + hard bounced + dropped, from the counters and from the log lines.
 */
import * as net from 'node:net';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { SMTPServer } from 'smtp-server';
import { TdcApp } from '../../lib/app';
import { parseConfigText, type Config } from '../../lib/config';
import type { ForwarderCounters } from '../../lib/forwarder';
import { MemoryLogger } from '../../lib/util/logger';
import { startPostfix, type PostfixInstance } from '../support/postfix';
import { ScriptedIntake, SilentServer, closedPort } from '../support/scripted-intake';
import { SmtpClient } from '../support/smtp-client';
import { TestDnsServer } from '../support/dns-server';
import { until } from '../support/forwarder-harness';
import { finalLinesOf, outcomeOf } from '../support/gateway-log';

jest.setTimeout(120_000);

const TLS = path.join(__dirname, '..', 'fixtures', 'tls');
const CA_FILE = path.join(TLS, 'ca.crt');
const N = 5;

function config(relay: string | undefined, extra = ''): Config {
  const r = parseConfigText(
    `[milter]\nlisten = inet:127.0.0.1:0\nstatus_listen = no\nhostname = gw.example.test\n\n` +
      `[tdc]\nenabled = yes\nintake_address = journal@intake.test\n${relay === undefined ? '' : `relay = ${relay}\n`}` +
      `tls_ca_file = ${CA_FILE}\nmax_queue_age = 3s\nretry_delay = 1s\nconnect_timeout = 1s\ncommand_timeout = 1s\n${extra}\n` +
      `[policy DEFAULT]\ntdc = global\n`,
    'faults.conf',
  );
  if (!r.ok) throw new Error(r.errors.join('\n'));
  return r.config;
}

/** Greets, then never answers anything. */
async function hangingServer(): Promise<{ port: number; close(): Promise<void> }> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((s) => {
    sockets.add(s);
    s.on('error', () => {});
    s.once('close', () => sockets.delete(s));
    s.write('220 hang.test ESMTP\r\n');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** A STARTTLS intake (test CA) that cuts the connection as soon as message data arrives. */
async function midDataDropper(): Promise<{ port: number; close(): Promise<void> }> {
  const server: SMTPServer = new SMTPServer({
    key: fs.readFileSync(path.join(TLS, 'intake.key')),
    cert: fs.readFileSync(path.join(TLS, 'intake.crt')),
    disableReverseLookup: true,
    authOptional: true,
    disabledCommands: ['AUTH'],
    logger: false,
    onData: (stream, session) => {
      stream.once('data', () => {
        // smtp-server keeps its connections in a Set; cut ours mid-DATA.
        const conns = (server as unknown as { connections: Set<{ id: string; _socket: net.Socket }> }).connections;
        for (const c of conns) if (c.id === session.id) c._socket.destroy();
      });
      stream.resume();
    },
  });
  server.on('error', () => {});
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const raw = (server as unknown as { server: net.Server }).server;
  return { port: (raw.address() as net.AddressInfo).port, close: () => new Promise<void>((resolve) => server.close(() => resolve())) };
}

type Final = 'delivered' | 'hard' | 'dropped';
interface FaultCase {
  name: string;
  /** Starts the peer; returns the relay (or undefined for MX routing) and its closer. */
  setup: () => Promise<{ relay: string | undefined; extra?: string; close(): Promise<void> }>;
  /** The allowed final outcomes of the case's copies. */
  finals: Final[];
}

const CASES: FaultCase[] = [
  { name: 'intake refusing connections', finals: ['hard'], setup: async () => ({ relay: `[127.0.0.1]:${await closedPort()}`, close: async () => {} }) },
  { name: 'intake hanging after the greeting', finals: ['hard'], setup: async () => { const h = await hangingServer(); return { relay: `[127.0.0.1]:${h.port}`, close: h.close }; } },
  { name: 'intake dropping the connection mid-DATA', finals: ['hard'], setup: async () => { const d = await midDataDropper(); return { relay: `[127.0.0.1]:${d.port}`, close: d.close }; } },
  {
    name: 'intake answering 4xx', finals: ['hard'],
    setup: async () => {
      const i = await ScriptedIntake.start({ replies: Array.from({ length: 4 * N }, () => ({ stage: 'data' as const, code: 451, message: 'try later' })) });
      return { relay: `[127.0.0.1]:${i.port}`, close: () => i.close() };
    },
  },
  {
    name: 'intake answering 5xx', finals: ['hard'],
    setup: async () => {
      const i = await ScriptedIntake.start({ replies: Array.from({ length: 4 * N }, () => ({ stage: 'rcpt' as const, code: 550, message: 'no such user' })) });
      return { relay: `[127.0.0.1]:${i.port}`, close: () => i.close() };
    },
  },
  {
    name: 'intake with an untrusted TLS certificate (verified TLS: refused, 5.7.10)', finals: ['hard'],
    setup: async () => { const i = await ScriptedIntake.start({ cert: 'untrusted' }); return { relay: `[127.0.0.1]:${i.port}`, close: () => i.close() }; },
  },
  { name: 'DNS failing (SERVFAIL for the intake domain)', finals: ['hard'], setup: async () => ({ relay: undefined, close: async () => {} }) },
  {
    // The two queued copies end hard bounced at max_queue_age if attempted, dropped if never attempted.
    name: 'queue full (queue_max_messages = 2, intake silent)', finals: ['hard', 'dropped'],
    setup: async () => { const s = await SilentServer.start(); return { relay: `[127.0.0.1]:${s.port}`, extra: 'queue_max_messages = 2', close: () => s.close() }; },
  },
];

function delta(a: ForwarderCounters, b: ForwarderCounters): ForwarderCounters {
  const out = { ...b };
  for (const k of Object.keys(a) as (keyof ForwarderCounters)[]) out[k] = b[k] - a[k];
  return out;
}

describe('faults on the copy path behind real Postfix: originals flow, every copy accounted for', () => {
  let app: TdcApp;
  let postfix: PostfixInstance;
  let dns: TestDnsServer;
  const logger = new MemoryLogger();

  beforeAll(async () => {
    dns = await TestDnsServer.start({ 'intake.test': 'SERVFAIL' });
    app = await TdcApp.start(config('[127.0.0.1]:9'), { logger, forwarderOverrides: { dnsServers: [dns.address] } });
    postfix = await startPostfix({ milters: app.milter.listenAddress, virtualDomains: ['example.test'] });
  });
  afterAll(async () => {
    await postfix?.stop();
    await app?.stop(500);
    await dns?.close();
  });

  it.each(CASES.map((c) => [c.name, c] as const))('%s', async (_name, c) => {
    const peer = await c.setup();
    try {
      // Start from an empty queue (a failed case before must not leak into this one's counts).
      await until(() => app.forwarder.counters().activeRecipients === 0, 10_000, 'an empty queue before the case');
      app.reload(config(peer.relay, peer.extra ?? ''));
      const before = app.forwarder.counters();
      const deliveredBefore = postfix.delivered().length;
      const client = await SmtpClient.connect(postfix.smtpPort);
      await client.ehlo('mx.partner.test');
      const ids: string[] = [];
      const latencies: number[] = [];
      for (let i = 0; i < N; i++) {
        const t0 = Date.now();
        const { queueId } = await client.send({
          from: 'alice@partner.test',
          to: ['ann@example.test'],
          data: Buffer.from(`From: alice@partner.test\r\nTo: ann@example.test\r\nSubject: ${c.name} ${i}\r\n\r\nhello\r\n`),
        });
        latencies.push(Date.now() - t0);
        ids.push(`${queueId}.1`);
      }
      await client.quit();
      // Originals: accepted at once, delivered without waiting for the copy. Waiting on the copy would
      // show: the first attempt alone takes up to 2 s here (1 s connect + 1 s command timeouts) and the
      // hanging and queue-full cases end only at max_queue_age (3 s). Measured 100-300 ms, 1.3 s under
      // three parallel suites on 2 cores.
      expect(Math.max(...latencies)).toBeLessThan(2000);
      await postfix.waitForDelivered(deliveredBefore + N, 10_000);

      await until(() => ids.every((id) => finalLinesOf(logger.texts(), id).length > 0), 15_000, 'a final line for every copy');
      await until(() => app.forwarder.counters().activeRecipients === 0, 5000, 'the queue to empty');

      // From the log lines: exactly one final line per copy, of an allowed kind.
      const kinds = ids.map((id) => {
        const lines = finalLinesOf(logger.texts(), id);
        expect(lines).toHaveLength(1);
        return outcomeOf(lines[0]!);
      });
      for (const k of kinds) expect(c.finals).toContain(k);

      // From the counters: enqueued = delivered + hard bounced + dropped (+ still queued), exactly;
      // copies refused at a full queue count as enqueued and dropped at once; copies removed after
      // an attempt (retries spent, max_queue_age) count hard bounced, as the gateway counts them.
      const d = delta(before, app.forwarder.counters());
      expect(d.enqueued).toBe(N);
      expect(d.enqueued).toBe(d.delivered + d.hardBounced + d.dropped + app.forwarder.counters().activeRecipients);
      expect(d.delivered + d.hardBounced + d.dropped).toBe(N);
      expect(d.delivered).toBe(kinds.filter((k) => k === 'delivered').length);
      expect(d.hardBounced).toBe(kinds.filter((k) => k === 'hard').length);
      expect(d.dropped).toBe(kinds.filter((k) => k === 'dropped').length);
      const rejected = ids.filter((id) => logger.matching(new RegExp(`^MID \\d+ copy ${id.replace('.', '\\.')} of queue id \\S+ dropped from the\\.tdc\\.queue: queue full`)).length === 1).length;
      if (c.name.startsWith('queue full')) expect(rejected).toBe(N - 2);
      else expect(rejected).toBe(0);
    } finally {
      await peer.close();
    }
  });
});
