/**
 * The real daemon process's mail log (`log_file`, the gateway's time stamps) and `tdc-milter tophosts`
 * against the gateway's samples (receiver-facts §3, §4), field by field. The daemon runs in a mount
 * namespace of its own whose /etc/resolv.conf names only our loopback DNS server (port 53 of a 127.x
 * address) and whose nsswitch says `hosts: files`, so MX routing is real and no query leaves loopback.
 * A message per case is fed by our milter client as Postfix would. Needs root, unshare and `npm run build`.
 */
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { DaemonProcess, assertBuilt, feedIncoming, runCli } from '../support/daemon-process';
import { TestDnsServer, type Zone } from '../support/dns-server';
import { finalLinesOf, midOfCopy } from '../support/gateway-log';
import { GATEWAY_STAMPED, SAMPLES, TOPHOSTS_SAMPLE, fieldsOf, sample, tophostsParts, twins } from '../support/gateway-samples';
import { assertCanUnshare, dnsGuardShell, pollUntil, verifyDnsGuard } from '../support/mta-sandbox';
import { ScriptedIntake, SilentServer, TEST_CA_FILE, type IntakeOptions } from '../support/scripted-intake';

jest.setTimeout(60_000);

/**
 * Loopback addresses of this spec alone (no one else binds 127.0.13.x): our DNS server on port 53,
 * the intake's MX host on port 25 (the gateway's port; MX routing has no other), and an MX host
 * where nothing listens.
 */
const DNS_HOST = '127.0.13.53';
const MX_HOST = '127.0.13.25';
const DEAD_HOST = '127.0.13.26';
const zoneTo = (ip: string): Zone => ({ 'intake.test': { mx: [[10, 'mx1.intake.test']] }, 'mx1.intake.test': { a: [ip] } });

interface Run {
  /** Every log line after its time stamp: `Info: TDC: …`, `Info: Message finished …`. */
  lines: string[];
  mid: number;
  /** A copy of the daemon's config naming its status endpoint's real port, for the CLI. */
  cliConfig: string;
}

let dns: TestDnsServer;
const cleanups: (() => Promise<void>)[] = [];

beforeAll(async () => {
  assertCanUnshare('gateway-log-daemon spec');
  assertBuilt();
  dns = await TestDnsServer.start({}, { host: DNS_HOST, port: 53 });
});
afterAll(async () => {
  await dns?.close();
});
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

/** The log file's lines after their time stamps; a line without the gateway's time stamp fails the spec. */
function readLog(file: string): string[] {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch {
    return [];
  }
  const now = Date.now();
  return text.split('\n').filter((l) => l !== '').map((l) => {
    const m = GATEWAY_STAMPED.exec(l);
    if (!m) throw new Error(`log line without the gateway's time stamp: ${l}`);
    // ctime(3) form in local time, as Date reads it: within the last minute.
    const at = new Date(m.groups!['stamp']!).getTime();
    if (!(at > now - 60_000 && at < now + 2_000)) throw new Error(`log line stamped ${m.groups!['stamp']}, not now: ${l}`);
    return m.groups!['line']!;
  });
}

/**
 * Start the daemon in its namespace (MX routing through our DNS server, zone `zone`), feed one
 * message with queue id `qid`, wait for the copy's final line and `Message finished`.
 */
async function run(qid: string, o: { zone: Zone; intake?: string; commandTimeout?: string; tdc?: string[] }): Promise<Run> {
  dns.zone = o.zone;
  dns.queries.length = 0;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tdc-glog-'));
  const logFile = path.join(dir, 'mail.log');
  const configFile = path.join(dir, 'milter.conf');
  const text = (status: string): string => [
    '[milter]', 'listen = inet:127.0.0.1:0', `status_listen = ${status}`, 'hostname = gw.example.test', `log_file = ${logFile}`, '',
    '[tdc]', 'enabled = yes', `intake_address = ${o.intake ?? 'journal@intake.test'}`, `tls_ca_file = ${TEST_CA_FILE}`,
    'retry_delay = 1s', 'connect_timeout = 2s', `command_timeout = ${o.commandTimeout ?? '5s'}`, ...(o.tdc ?? []), '',
    '[policy DEFAULT]', 'tdc = global', '',
  ].join('\n');
  fs.writeFileSync(configFile, text('127.0.0.1:0'));
  const guard = dnsGuardShell(dir, DNS_HOST);
  const daemon = DaemonProcess.spawn(configFile, {
    wrapper: ['unshare', '-m', '--propagation', 'private', 'sh', '-c', `${guard.join(' && ')} && exec "$0" "$@"`],
  });
  cleanups.push(() => daemon.stop(3_000));
  const says = (): string => `log:\n${readLog(logFile).join('\n')}\noutput:\n${daemon.lines.join('\n')}`;
  const ports = await pollUntil(() => {
    if (daemon.child.exitCode !== null) throw new Error(`the daemon exited (${daemon.child.exitCode}); ${says()}`);
    const log = readLog(logFile).join('\n');
    const milter = /milter listening on inet:127\.0\.0\.1:(\d+)/.exec(log);
    const status = /status endpoint on http:\/\/(127\.0\.0\.1:\d+)\//.exec(log);
    return milter && status ? { milter: Number(milter[1]), status: status[1]! } : undefined;
  }, 15_000, () => `the daemon's listening lines; ${says()}`);
  verifyDnsGuard(daemon.child.pid!, 'the daemon', DNS_HOST);
  const cliConfig = path.join(dir, 'cli.conf');
  fs.writeFileSync(cliConfig, text(ports.status));

  await feedIncoming(ports.milter, [qid]);
  const lines = await pollUntil(() => {
    const l = readLog(logFile);
    const mid = midOfCopy(l, `${qid}.1`);
    return mid !== undefined && finalLinesOf(l, `${qid}.1`).length > 0 && l.some((x) => x === `Info: Message finished MID ${mid} done`) ? l : undefined;
  }, 20_000, () => `the final lines of ${qid}.1; ${says()}`);
  // Every lookup went to our server, and it was asked (the daemon read the namespace's resolv.conf).
  expect(dns.queries.length).toBeGreaterThan(0);
  return { lines, mid: midOfCopy(lines, `${qid}.1`)!, cliConfig };
}

async function intake(opts: IntakeOptions): Promise<ScriptedIntake> {
  const i = await ScriptedIntake.start({ host: MX_HOST, port: 25, ...opts });
  cleanups.push(() => i.close());
  return i;
}

describe('the daemon process\'s mail log against the gateway\'s samples (resolver: our loopback DNS only)', () => {
  it('success: enqueued, New SMTP, TLS success, Delivery start, successfully delivered, Message finished', async () => {
    const i = await intake({});
    const r = await run('GDOK1', { zone: zoneTo(MX_HOST) });
    const [enq, conn, tls, start, done, fin] = twins(r.lines, ['enqueued', 'new connection', 'TLS success', 'delivery start', 'delivered', 'message finished']);
    expect(enq).toEqual({ mid: String(r.mid), messageId: '<GDOK1@partner.test>', intake: 'journal@intake.test' });
    expect(conn).toEqual({ dcid: expect.stringMatching(/^[1-9]\d*$/), interface: expect.stringMatching(/^127\./), address: MX_HOST, port: '25' });
    // The agent may open several connections (the gateway opens ≥ 3 for a backlog): TLS and the
    // delivery name one of those opened, whichever it was.
    const opened = r.lines.map((l) => fieldsOf('new connection', l)?.dcid).filter((d) => d !== undefined);
    expect(tls).toEqual({ dcid: expect.stringMatching(/^[1-9]\d*$/), protocol: expect.stringMatching(/^TLSv1\.[23]$/), cipher: expect.any(String) });
    expect(start).toEqual({ dcid: expect.stringMatching(/^[1-9]\d*$/), mid: String(r.mid) });
    expect(opened).toContain(tls!.dcid);
    expect(opened).toContain(start!.dcid);
    expect(done).toEqual({ mid: String(r.mid) });
    expect(fin).toEqual({ mid: String(r.mid) });
    expect(r.lines).toContainEqual(expect.stringMatching(new RegExp(`^Info: TDC: MID ${r.mid} copy GDOK1\\.1 of queue id GDOK1 ready \\d+ bytes$`)));
    expect(i.received).toHaveLength(1);
    expect(dns.queries).toContainEqual({ name: 'intake.test', type: 'mx' });

    // tophosts from the CLI, as an admin runs it: the sample's heading, legend, column headers, then rows.
    const top = await runCli(['tophosts', '--config', r.cliConfig]);
    expect([top.status, top.stderr]).toEqual([0, '']);
    const ours = tophostsParts(top.stdout);
    const theirs = tophostsParts(TOPHOSTS_SAMPLE);
    expect(ours.statusAsOf).toMatch(/^\w{3} \w{3} [ \d]\d \d\d:\d\d:\d\d \d{4} \S+$/);
    expect(top.stdout).toMatch(/^Status as of: {16}\S/m);
    expect(ours.legend).toBe(theirs.legend);
    expect(ours.headers).toEqual(theirs.headers);
    // # host active [conn. out: connections may stay open a moment] delivered soft hard
    expect(ours.rows.map((w) => w.filter((_, k) => k !== 3))).toEqual([['1', 'the.tdc.queue', '0', '1', '0', '0'], ['2', 'intake.test', '0', '1', '0', '0']]);
  });

  it('4xx then success: a Delayed line, then the success sequence on the retry', async () => {
    const i = await intake({ replies: [{ stage: 'mail', code: 451, message: '4.3.0 try later' }] });
    const r = await run('GDSOFT1', { zone: zoneTo(MX_HOST) });
    const delayed = r.lines.findIndex((l) => new RegExp(`^Warning: TDC: Delayed: DCID [1-9]\\d* MID ${r.mid} to RID 0 - 4\\.3\\.0 - Temporary failure at intake \\('451', \\['4\\.3\\.0 try later'\\]\\); retry in 1 s \\(attempt 1 of 2\\)$`).test(l));
    expect(delayed).toBeGreaterThan(0);
    const [start, done, fin] = twins(r.lines.slice(delayed), ['delivery start', 'delivered', 'message finished']);
    expect([start!.mid, done!.mid, fin!.mid]).toEqual([String(r.mid), String(r.mid), String(r.mid)]);
    expect(i.received).toHaveLength(1);
  });

  it('5xx: the gateway\'s three hard-bounce lines, then Message finished', async () => {
    const i = await intake({ replies: [{ stage: 'rcpt', code: 550, message: '5.1.1 no such journal' }] });
    const r = await run('GDHARD1', { zone: zoneTo(MX_HOST) });
    const [hb, failed, bounced, fin] = twins(r.lines, ['hard bounced', 'delivery failed: hard bounced', 'bounced', 'message finished']);
    const reply = { dsn: '5.1.1', text: 'Rejected by intake', code: '550', reply: '5.1.1 no such journal' };
    expect(hb).toEqual(reply);
    expect(failed).toEqual({ mid: String(r.mid) });
    expect(bounced).toEqual({ dcid: expect.stringMatching(/^[1-9]\d*$/), mid: String(r.mid), ...reply });
    expect(fin).toEqual({ mid: String(r.mid) });
    expect(i.transactions).toBe(1);
  });

  it('TLS failure: Connection Error (details tls) and "delivery failed to … :TLS Error."', async () => {
    const i = await intake({ cert: 'untrusted' });
    const r = await run('GDTLS1', { zone: zoneTo(MX_HOST) });
    const [err, failed] = twins(r.lines, ['connection error', 'TLS error']);
    expect(err).toEqual({
      dcid: expect.stringMatching(/^[1-9]\d*$/), ip: MX_HOST, port: '25', details: 'tls', interface: expect.stringMatching(/^127\./),
      reason: expect.stringMatching(/certificate/i),
    });
    expect(failed).toEqual({ mid: String(r.mid) });
    expect(i.transactions).toBe(0);
  });

  it('connection refused: Connection Errors (details refused), then the hard-bounce lines; tophosts marks the host down', async () => {
    await assertNothingListens(DEAD_HOST, 25);
    const r = await run('GDREF1', { zone: zoneTo(DEAD_HOST) });
    const errors = r.lines.map((l) => fieldsOf('connection error', l)).filter((f) => f !== undefined);
    // One per attempt at least (the agent may open more connections than attempts); each its own DCID.
    expect(errors.length).toBeGreaterThanOrEqual(2);
    for (const e of errors) {
      expect(e).toEqual({ dcid: expect.stringMatching(/^[1-9]\d*$/), ip: DEAD_HOST, port: '25', details: 'refused', interface: expect.any(String), reason: expect.stringMatching(/ECONNREFUSED|refused/i) });
    }
    expect(new Set(errors.map((e) => e.dcid)).size).toBe(errors.length);
    const [hb, failed, bounced, fin] = twins(r.lines, ['hard bounced', 'delivery failed: hard bounced', 'bounced', 'message finished']);
    // A refused connection is X.4.1 "No answer from host" (RFC 3463), as in gateway-log.spec; no reply, so '000'.
    expect(hb).toMatchObject({ dsn: '5.4.1', code: '000' });
    expect([failed!.mid, bounced!.mid, fin!.mid]).toEqual([String(r.mid), String(r.mid), String(r.mid)]);

    const top = await runCli(['tophosts', '--config', r.cliConfig]);
    expect(top.status).toBe(0);
    // # host active conn.out delivered [soft: per attempt] hard: down, the copy hard bounced (not dropped).
    expect(tophostsParts(top.stdout).rows.map((w) => w.filter((_, k) => k !== 5))).toEqual([['1', '*the.tdc.queue', '0', '0', '0', '1'], ['2', '*intake.test', '0', '0', '0', '1']]);
  });

  it('NXDOMAIN: the sample\'s sequence — enqueued, DNS Error, Hard bounced, delivery failed, Bounced: DCID 0', async () => {
    const r = await run('GDNX1', { zone: {}, intake: 'test@esa.example.com' });
    const [enq, dnsErr, hb, failed, bounced, fin] = twins(r.lines, ['enqueued', 'DNS error', 'hard bounced', 'delivery failed: hard bounced', 'bounced', 'message finished']);
    expect(enq).toEqual({ mid: String(r.mid), messageId: '<GDNX1@partner.test>', intake: 'test@esa.example.com' });
    expect(dnsErr).toEqual(fieldsOf('DNS error', sample('DNS error').line));
    const sampleFields = fieldsOf('hard bounced', sample('hard bounced').line)!;
    const reply = { ...sampleFields, reply: 'DNS Hard Error looking up esa.example.com (MX) : NXDomain' };
    expect(hb).toEqual(reply);
    expect(failed).toEqual({ mid: String(r.mid) });
    expect(bounced).toEqual({ dcid: '0', mid: String(r.mid), ...reply });
    expect(fin).toEqual({ mid: String(r.mid) });
    expect(dns.queries).toContainEqual({ name: 'esa.example.com', type: 'mx' });
  });

  it('the 120 s limit (max_queue_age = 2s here): removed from the queue, then hard bounced 5.4.7 as the gateway counts it', async () => {
    const silent = await SilentServer.start({ host: MX_HOST, port: 25 });
    cleanups.push(() => silent.close());
    const r = await run('GDAGE1', { zone: zoneTo(MX_HOST), commandTimeout: '30s', tdc: ['max_queue_age = 2s'] });
    expect(r.lines).toContainEqual(expect.stringMatching(new RegExp(`^Warning: TDC: MID ${r.mid} removed from the\\.tdc\\.queue: too old \\(2(\\.\\d+)? s in queue, max_queue_age 2 s\\)$`)));
    const [hb, failed, bounced, fin] = twins(r.lines, ['hard bounced', 'delivery failed: hard bounced', 'bounced', 'message finished']);
    expect(hb).toMatchObject({ dsn: '5.4.7', text: 'Delivery expired (message too old)', code: '000' });
    expect([failed!.mid, bounced!.mid, fin!.mid]).toEqual([String(r.mid), String(r.mid), String(r.mid)]);

    const top = await runCli(['tophosts', '--config', r.cliConfig]);
    expect(top.status).toBe(0);
    const queue = tophostsParts(top.stdout).rows.find((w) => /the\.tdc\.queue$/.test(w[1] ?? ''));
    expect({ active: queue?.[2], delivered: queue?.[4], hard: queue?.[6] }).toEqual({ active: '0', delivered: '0', hard: '1' });
  });

  it('every sample line reads by its own pattern (the patterns above can fail)', () => {
    for (const s of SAMPLES) expect([s.name, s.pattern.test(s.line)]).toEqual([s.name, true]);
    expect(GATEWAY_STAMPED.exec('Fri Feb 16 21:19:22 2024 Info: Message finished MID 14501404 done')?.groups).toEqual({ stamp: 'Fri Feb 16 21:19:22 2024', line: 'Info: Message finished MID 14501404 done' });
  });
});

/** The dead MX host must refuse (else the case would test something else): fail clearly if not. */
async function assertNothingListens(host: string, port: number): Promise<void> {
  const refused = await new Promise<boolean>((resolve) => {
    const s = net.connect({ host, port });
    s.once('connect', () => { s.destroy(); resolve(false); });
    s.once('error', (e: NodeJS.ErrnoException) => resolve(e.code === 'ECONNREFUSED'));
  });
  if (!refused) throw new Error(`${host}:${port} does not refuse connections: something else uses it; pick another loopback address in this spec`);
}
