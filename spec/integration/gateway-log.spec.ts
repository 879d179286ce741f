/**
 * The daemon's mail log and `tophosts` against the gateway's own samples (receiver-facts §3, §4), field
 * by field: the real daemon (TdcApp with the plain log format, status endpoint on), a message fed by
 * our milter client as the MTA would, MX routing through a loopback DNS server to a real STARTTLS
 * intake. Cases: success, 4xx then success, 5xx, TLS failure, connection refused, NXDOMAIN, and the
 * max_queue_age limit (2 s here). Each sample line must have a twin, in the sample's order.
 */
import * as path from 'node:path';
import { PassThrough } from 'node:stream';
import { TdcApp } from '../../lib/app';
import { parseConfigText } from '../../lib/config';
import { tophostsCommand } from '../../lib/status';
import { createLogger } from '../../lib/util/logger';
import { feedIncoming } from '../support/daemon-process';
import { TestDnsServer, type Zone } from '../support/dns-server';
import { until } from '../support/forwarder-harness';
import { finalLinesOf, midOfCopy } from '../support/gateway-log';
import { SAMPLES, TOPHOSTS_SAMPLE, fieldsOf, twins } from '../support/gateway-samples';
import { ScriptedIntake, SilentServer, closedPort, type IntakeOptions } from '../support/scripted-intake';

jest.setTimeout(60_000);

const CA_FILE = path.join(__dirname, '..', 'fixtures', 'tls', 'ca.crt');
const MX_ZONE: Zone = { 'intake.test': { mx: [[10, 'mx1.intake.test']] }, 'mx1.intake.test': { a: ['127.0.0.1'] } };

interface Run {
  /** Every log line after its time stamp: `Info: TDC: …`, `Info: Message finished …`. */
  lines: string[];
  mid: number;
  app: TdcApp;
}

let dns: TestDnsServer;
const cleanups: (() => Promise<void>)[] = [];

beforeAll(async () => {
  dns = await TestDnsServer.start({});
});
afterAll(async () => {
  await dns.close();
});
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

/** Start the daemon for one intake, feed one message (queue id `qid`), wait for its final line. */
async function run(qid: string, o: { intake: string; zone: Zone; mxPort: number; conf?: string; commandTimeout?: string }): Promise<Run> {
  dns.zone = o.zone;
  const out: string[] = [];
  let partial = '';
  const stream = new PassThrough();
  stream.on('data', (d: Buffer) => {
    const parts = (partial + d.toString('utf8')).split('\n');
    partial = parts.pop()!;
    for (const l of parts) out.push(l.slice(l.indexOf(' ') + 1));
  });
  const parsed = parseConfigText(
    '[milter]\nlisten = inet:127.0.0.1:0\nstatus_listen = 127.0.0.1:0\nhostname = gw.example.test\n\n' +
      `[tdc]\nenabled = yes\nintake_address = ${o.intake}\ntls_ca_file = ${CA_FILE}\nretry_delay = 1s\n` +
      `connect_timeout = 2s\ncommand_timeout = ${o.commandTimeout ?? '5s'}\n${o.conf ?? ''}\n[policy DEFAULT]\ntdc = global\n`,
    'gateway-log.conf',
  );
  if (!parsed.ok) throw new Error(parsed.errors.join('\n'));
  const app = await TdcApp.start(parsed.config, {
    logger: createLogger({ level: 'info', format: 'plain', stream }),
    forwarderOverrides: { dnsServers: [dns.address], mxPort: o.mxPort },
  });
  cleanups.push(() => app.stop(500));
  const port = Number(/:(\d+)$/.exec(app.milter.listenAddress)![1]);
  await feedIncoming(port, [qid]);
  await until(() => finalLinesOf(out, `${qid}.1`).length > 0 && out.some((l) => /Message finished MID \d+ /.test(l)), 20_000, `the final lines of ${qid}.1`);
  return { lines: out, mid: midOfCopy(out, `${qid}.1`)!, app };
}

async function intake(opts: IntakeOptions): Promise<ScriptedIntake> {
  const i = await ScriptedIntake.start(opts);
  cleanups.push(() => i.close());
  return i;
}

describe('the daemon\'s mail log, line by line against the gateway\'s samples', () => {
  it('patterns: every sample reads by its own pattern', () => {
    for (const s of SAMPLES) expect([s.name, s.pattern.test(s.line)]).toEqual([s.name, true]);
  });

  it('success: enqueued, New SMTP, TLS success, Delivery start, successfully delivered, Message finished', async () => {
    const i = await intake({});
    const r = await run('GWOK1', { intake: 'journal@intake.test', zone: MX_ZONE, mxPort: i.port });
    const [enq, conn, tls, start, done, fin] = twins(r.lines, ['enqueued', 'new connection', 'TLS success', 'delivery start', 'delivered', 'message finished']);
    expect(enq).toEqual({ mid: String(r.mid), messageId: '<GWOK1@partner.test>', intake: 'journal@intake.test' });
    expect(conn).toEqual({ dcid: expect.stringMatching(/^\d+$/), interface: '127.0.0.1', address: '127.0.0.1', port: String(i.port) });
    expect(tls).toEqual({ dcid: conn!.dcid, protocol: expect.stringMatching(/^TLSv1\.[23]$/), cipher: expect.any(String) });
    expect(start).toEqual({ dcid: conn!.dcid, mid: String(r.mid) });
    expect(done).toEqual({ mid: String(r.mid) });
    expect(fin).toEqual({ mid: String(r.mid) });
    // The line that ties the MID to the MTA queue id names the copy id `track` knows.
    expect(r.lines.some((l) => new RegExp(`^Info: TDC: MID ${r.mid} copy GWOK1\\.1 of queue id GWOK1 ready \\d+ bytes$`).test(l))).toBe(true);
    expect(i.received).toHaveLength(1);
  });

  it('4xx then success: a Delayed line, then the success sequence on the retry', async () => {
    const i = await intake({ replies: [{ stage: 'mail', code: 451, message: '4.3.0 try later' }] });
    const r = await run('GWSOFT1', { intake: 'journal@intake.test', zone: MX_ZONE, mxPort: i.port });
    const delayed = r.lines.findIndex((l) => new RegExp(`^Warning: TDC: Delayed: DCID \\d+ MID ${r.mid} to RID 0 - 4\\.3\\.0 - Temporary failure at intake \\('451', \\['4\\.3\\.0 try later'\\]\\); retry in 1 s \\(attempt 1 of 2\\)$`).test(l));
    expect(delayed).toBeGreaterThan(0);
    const [start, done, fin] = twins(r.lines.slice(delayed), ['delivery start', 'delivered', 'message finished']);
    expect([start!.mid, done!.mid, fin!.mid]).toEqual([String(r.mid), String(r.mid), String(r.mid)]);
    expect(i.received).toHaveLength(1);
  });

  it('5xx: the gateway\'s three hard-bounce lines, then Message finished', async () => {
    const i = await intake({ replies: [{ stage: 'rcpt', code: 550, message: '5.1.1 no such journal' }] });
    const r = await run('GWHARD1', { intake: 'journal@intake.test', zone: MX_ZONE, mxPort: i.port });
    const [hb, failed, bounced, fin] = twins(r.lines, ['hard bounced', 'delivery failed: hard bounced', 'bounced', 'message finished']);
    expect(hb).toEqual({ dsn: '5.1.1', text: 'Rejected by intake', code: '550', reply: '5.1.1 no such journal' });
    expect(failed).toEqual({ mid: String(r.mid) });
    expect(bounced).toEqual({ dcid: expect.stringMatching(/^[1-9]\d*$/), mid: String(r.mid), dsn: '5.1.1', text: 'Rejected by intake', code: '550', reply: '5.1.1 no such journal' });
    expect(fin).toEqual({ mid: String(r.mid) });
    expect(i.transactions).toBe(1);
  });

  it('TLS failure: Connection Error (details tls) and "delivery failed to … :TLS Error."', async () => {
    const i = await intake({ cert: 'untrusted' });
    const r = await run('GWTLS1', { intake: 'journal@intake.test', zone: MX_ZONE, mxPort: i.port });
    const [err, failed] = twins(r.lines, ['connection error', 'TLS error']);
    expect(err).toEqual({
      dcid: expect.stringMatching(/^\d+$/), ip: '127.0.0.1', port: String(i.port), details: 'tls', interface: '127.0.0.1',
      reason: expect.stringMatching(/self-signed certificate/),
    });
    expect(failed).toEqual({ mid: String(r.mid) });
    expect(i.transactions).toBe(0);
  });

  it('connection refused: a Connection Error per attempt, then hard bounced', async () => {
    const port = await closedPort();
    const r = await run('GWREF1', { intake: 'journal@intake.test', zone: MX_ZONE, mxPort: port });
    const errors = r.lines.map((l) => fieldsOf('connection error', l)).filter((f) => f !== undefined);
    expect(errors).toHaveLength(2);
    for (const e of errors) {
      expect(e).toEqual({ dcid: expect.stringMatching(/^\d+$/), ip: '127.0.0.1', port: String(port), details: 'refused', interface: expect.any(String), reason: expect.stringMatching(/ECONNREFUSED/) });
    }
    expect(errors[1]!.dcid).not.toBe(errors[0]!.dcid);
    const [hb, failed] = twins(r.lines, ['hard bounced', 'delivery failed: hard bounced', 'bounced', 'message finished']);
    // A refused connection is X.4.1 "No answer from host" (RFC 3463; Postfix's smtp says the same).
    expect(hb).toMatchObject({ dsn: '5.4.1', code: '000' });
    expect(failed).toEqual({ mid: String(r.mid) });

    // tophosts: the host is marked down, the copy counted hard bounced (not dropped).
    const top = await tophostsCommand(r.app.statusAddress!);
    const rows = top.stdout.split('\n').slice(6).filter((l) => l !== '').map((l) => l.trim().split(/\s+/));
    expect(rows).toEqual([['1', '*the.tdc.queue', '0', '0', '0', '1', '1'], ['2', '*intake.test', '0', '0', '0', '1', '1']]);
  });

  it('NXDOMAIN: the sample\'s sequence — enqueued, DNS Error, Hard bounced, delivery failed, Bounced: DCID 0', async () => {
    const r = await run('GWNX1', { intake: 'test@esa.example.com', zone: {}, mxPort: 25 });
    const [enq, dnsErr, hb, failed, bounced] = twins(r.lines, ['enqueued', 'DNS error', 'hard bounced', 'delivery failed: hard bounced', 'bounced']);
    expect(enq).toEqual({ mid: String(r.mid), messageId: '<GWNX1@partner.test>', intake: 'test@esa.example.com' });
    expect(dnsErr).toEqual(fieldsOf('DNS error', 'Info: DNS Error esa.example.com MX - NXDomain'));
    const sampleFields = fieldsOf('hard bounced', SAMPLES.find((s) => s.name === 'hard bounced')!.line)!;
    expect(hb).toEqual({ ...sampleFields, reply: 'DNS Hard Error looking up esa.example.com (MX) : NXDomain' });
    expect(failed).toEqual({ mid: String(r.mid) });
    expect(bounced).toEqual({ dcid: '0', mid: String(r.mid), ...sampleFields, reply: 'DNS Hard Error looking up esa.example.com (MX) : NXDomain' });
  });

  it('max_queue_age (2 s here): removed from the queue, then hard bounced 5.4.7 as the gateway counts it', async () => {
    const silent = await SilentServer.start();
    cleanups.push(() => silent.close());
    const r = await run('GWAGE1', { intake: 'journal@intake.test', zone: MX_ZONE, mxPort: silent.port, conf: 'max_queue_age = 2s\n', commandTimeout: '30s' });
    expect(r.lines.some((l) => new RegExp(`^Warning: TDC: MID ${r.mid} removed from the\\.tdc\\.queue: too old \\(2(\\.\\d+)? s in queue, max_queue_age 2 s\\)$`).test(l))).toBe(true);
    const [hb, failed, bounced, fin] = twins(r.lines, ['hard bounced', 'delivery failed: hard bounced', 'bounced', 'message finished']);
    expect(hb).toMatchObject({ dsn: '5.4.7', text: 'Delivery expired (message too old)', code: '000' });
    expect([failed!.mid, bounced!.mid, fin!.mid]).toEqual([String(r.mid), String(r.mid), String(r.mid)]);
    expect(r.app.forwarder.counters()).toMatchObject({ hardBounced: 1, dropped: 0, activeRecipients: 0 });
  });

  it('tophosts: the sample\'s heading, legend and column headers, then the rows', async () => {
    const i = await intake({});
    const r = await run('GWTOP1', { intake: 'journal@intake.test', zone: MX_ZONE, mxPort: i.port });
    const top = await tophostsCommand(r.app.statusAddress!);
    expect(top.exitCode).toBe(0);
    const ours = top.stdout.split('\n');
    const sample = TOPHOSTS_SAMPLE.split('\n');
    const words = (l: string): string[] => l.trim().split(/\s+/);
    expect(ours[1]).toMatch(/^Status as of: {16}\w{3} \w{3} [ \d]\d \d\d:\d\d:\d\d \d{4} \S+$/);
    expect(words(ours[1]!).slice(0, 3)).toEqual(words(sample[0]!).slice(0, 3));
    expect(ours[2]).toBe(sample[1]);
    expect(words(ours[4]!)).toEqual(words(sample[3]!));
    expect(words(ours[5]!)).toEqual(words(sample[4]!));
    expect(words(ours[6]!).filter((_, k) => k !== 3)).toEqual(['1', 'the.tdc.queue', '0', '1', '0', '0']);
    expect(words(ours[7]!).filter((_, k) => k !== 3)).toEqual(['2', 'intake.test', '0', '1', '0', '0']);
  });
});
