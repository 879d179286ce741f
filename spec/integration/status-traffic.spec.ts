/**
 * Status after real traffic: a real Postfix → the real daemon process (dist/lib/main.js run --config
 * FILE, status endpoint on loopback) → a STARTTLS intake. After mail across policies (journaled to two
 * intake domains, `tdc = no`, outgoing), GET /metrics, GET /status, `tdc-milter status` and
 * `tdc-milter track` must agree with what was sent and what the intake received; `status` against a
 * daemon that is gone says so and exits 1.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { startPostfix, type PostfixInstance } from '../support/postfix';
import { ScriptedIntake } from '../support/scripted-intake';
import { SmtpClient } from '../support/smtp-client';
import { DaemonProcess, runCli, writeConfig } from '../support/daemon-process';
import { freePorts } from '../support/mta-sandbox';
import { until } from '../support/forwarder-harness';
import { httpGet } from '../support/http-get';

const CA_FILE = path.join(__dirname, '..', 'fixtures', 'tls', 'ca.crt');
const DOMAINS = ['example.test', 'finance.example.test', 'lab.example.test'];

function configText(milterPort: number, statusPort: number, intakePort: number): string {
  return `[milter]
listen = inet:127.0.0.1:${milterPort}
status_listen = 127.0.0.1:${statusPort}
hostname = gw.example.test
drain_time = 2s

[tdc]
enabled = yes
intake_address = global@intake.test
relay = [127.0.0.1]:${intakePort}
tls_ca_file = ${CA_FILE}
max_queue_age = 30s
retry_delay = 1s
connect_timeout = 2s
command_timeout = 5s

[policy finance]
recipients = @finance.example.test
tdc = custom
intake_address = finance@journal.finance.test

[policy lab]
recipients = @lab.example.test
tdc = no

[policy DEFAULT]
tdc = global
`;
}

function message(subject: string, from: string, to: string[]): Buffer {
  return Buffer.from(
    `From: ${from}\r\nTo: ${to.join(', ')}\r\nSubject: ${subject}\r\nMessage-ID: <${subject}@partner.test>\r\n` +
      `Date: Mon, 23 Nov 2026 21:40:00 +0000\r\n\r\nbody of ${subject}\r\n`,
    'latin1',
  );
}

/** The value of one sample in a Prometheus exposition (labels in any order); undefined when absent. */
function sample(text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  for (const line of text.split('\n')) {
    const m = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const got = new Map([...(m[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)].map((x) => [x[1]!, x[2]!]));
    if (got.size === Object.keys(labels).length && Object.entries(labels).every(([k, v]) => got.get(k) === v)) return Number(m[3]);
  }
  return undefined;
}

/** The numeric cells of a destination row of `tdc-milter status`. */
function tableRow(table: string, destination: string): number[] | undefined {
  const line = table.split('\n').find((l) => l.startsWith(`${destination} `));
  return line?.slice(destination.length).trim().split(/\s+/).map(Number);
}

describe('status, metrics and tracking after real traffic through Postfix', () => {
  let intake: ScriptedIntake;
  let daemon: DaemonProcess;
  let postfix: PostfixInstance;
  let statusPort: number;
  let configFile: string;
  const queueIds: Record<string, string> = {};

  beforeAll(async () => {
    intake = await ScriptedIntake.start();
    const [milterPort, sPort] = await freePorts(2);
    statusPort = sPort!;
    configFile = writeConfig(configText(milterPort!, statusPort, intake.port));
    daemon = await DaemonProcess.start(configFile);
    postfix = await startPostfix({
      milters: `inet:127.0.0.1:${milterPort}`,
      virtualDomains: DOMAINS,
      listeners: { originating: { overrides: { milter_macro_daemon_name: 'ORIGINATING' } } },
    });

    // Incoming: m1 global, m2 finance, m3 lab (tdc = no), m4 all three, m5 global. Outgoing: o1, o2.
    const inbound: [string, string[]][] = [
      ['m1', ['ann@example.test']],
      ['m2', ['bob@finance.example.test']],
      ['m3', ['cy@lab.example.test']],
      ['m4', ['ann@example.test', 'bob@finance.example.test', 'cy@lab.example.test']],
      ['m5', ['dee@example.test']],
    ];
    const client = await SmtpClient.connect(postfix.smtpPort);
    await client.ehlo('mx.partner.test');
    for (const [subject, to] of inbound) {
      const r = await client.send({ from: 'alice@partner.test', to, data: message(subject, 'alice@partner.test', to) });
      queueIds[subject] = r.queueId!;
    }
    await client.quit();
    const out = await SmtpClient.connect(postfix.ports['originating']!);
    await out.ehlo('workstation.example.test');
    for (const subject of ['o1', 'o2']) {
      const r = await out.send({ from: 'ann@example.test', to: ['dee@example.test'], data: message(subject, 'ann@example.test', ['dee@example.test']) });
      queueIds[subject] = r.queueId!;
    }
    await out.quit();

    await postfix.waitForDelivered(9);
    await until(() => intake.received.length >= 5, 15_000, 'five journal copies at the intake');
    await until(() => daemon.matching(/Message done/).length >= 5, 10_000, 'five "Message done" lines');
  }, 60_000);

  afterAll(async () => {
    await postfix?.stop();
    await daemon?.stop(10_000);
    await intake?.close();
  });

  it('the intake received one copy per intake address per journaled message', () => {
    const byRcpt = new Map<string, number>();
    for (const r of intake.received) byRcpt.set(r.rcptTo.join(','), (byRcpt.get(r.rcptTo.join(',')) ?? 0) + 1);
    expect(Object.fromEntries(byRcpt)).toEqual({ 'global@intake.test': 3, 'finance@journal.finance.test': 2 });
    expect(intake.received.every((r) => r.secure)).toBe(true);
  });

  it('GET /metrics: delivered and enqueued per destination, decisions by policy, messages seen', async () => {
    const { status, body } = await httpGet(statusPort, '/metrics');
    expect(status).toBe(200);
    const q = (name: string, destination: string) => sample(body, name, { destination });
    expect([q('tdc_enqueued_total', 'the.tdc.queue'), q('tdc_delivered_total', 'the.tdc.queue')]).toEqual([5, 5]);
    expect([q('tdc_delivered_total', 'intake.test'), q('tdc_delivered_total', 'journal.finance.test')]).toEqual([3, 2]);
    expect(q('tdc_hard_bounced_total', 'the.tdc.queue')).toBe(0);
    const dropped = (reason: string) => sample(body, 'tdc_dropped_total', { destination: 'the.tdc.queue', reason });
    expect(['queue_full', 'too_old', 'retries_spent', 'shutting_down'].map(dropped)).toEqual([0, 0, 0, 0]);
    expect(sample(body, 'tdc_last_delivered_timestamp_seconds', { destination: 'intake.test' })).toBeGreaterThan(Date.now() / 1000 - 120);
    expect(sample(body, 'tdc_copy_lag_seconds_count')).toBe(5);
    expect([q('tdc_queue_active_recipients', 'the.tdc.queue'), q('tdc_queue_bytes', 'the.tdc.queue')]).toEqual([0, 0]);
    const d = (policy: string, outcome: string) => sample(body, 'tdc_journal_decisions_total', { policy, outcome });
    expect(d('DEFAULT', 'journaled')).toBe(3);
    expect(d('finance', 'journaled')).toBe(2);
    expect(d('lab', 'skipped')).toBe(2); // one recipient each in m3 and m4
    expect(d('(none)', 'not_journaled')).toBe(2); // o1 and o2: outgoing
    expect(sample(body, 'tdc_milter_messages_total')).toBe(7);
    expect(sample(body, 'tdc_eob_duration_seconds_count')).toBe(7);
  });

  it('GET /status: the same numbers as the intake saw, per intake domain', async () => {
    const { status, body } = await httpGet(statusPort, '/status');
    expect(status).toBe(200);
    const doc = JSON.parse(body) as {
      queue: { delivered: number; enqueued: number; dropped: number; activeRecipients: number };
      domains: { destination: string; delivered: number; enqueued: number }[];
      milter: { messagesTotal: number };
      journaling: boolean;
      intakeAddress: string;
    };
    expect([doc.queue.enqueued, doc.queue.delivered, doc.queue.dropped, doc.queue.activeRecipients]).toEqual([5, intake.received.length, 0, 0]);
    expect(doc.domains.map((r) => [r.destination, r.enqueued, r.delivered])).toEqual([
      ['intake.test', 3, 3],
      ['journal.finance.test', 2, 2],
    ]);
    expect(doc.milter.messagesTotal).toBe(7);
    expect([doc.journaling, doc.intakeAddress]).toEqual([true, 'global@intake.test']);
  });

  it('`tdc-milter status --config FILE` prints the table with those numbers', async () => {
    const r = await runCli(['status', '--config', configFile]);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/^milter inet:127\.0\.0\.1:\d+: 0 sessions active, \d+ connections?, 7 messages, 0 protocol errors$/m);
    // active rcpts, conn out, delivered, soft bounced, hard bounced, dropped, queue bytes
    expect(tableRow(r.stdout, 'the.tdc.queue')?.filter((_, i) => i !== 1)).toEqual([0, 5, 0, 0, 0, 0]);
    expect(tableRow(r.stdout, 'intake.test')?.[2]).toBe(3);
    expect(tableRow(r.stdout, 'journal.finance.test')?.[2]).toBe(2);
  });

  it('`tdc-milter tophosts --config FILE` prints the gateway\'s layout with those numbers', async () => {
    const r = await runCli(['tophosts', '--config', configFile]);
    expect([r.status, r.stderr]).toEqual([0, '']);
    const lines = r.stdout.split('\n');
    expect(lines[1]).toMatch(/^Status as of: {16}\w{3} \w{3} [ \d]\d \d\d:\d\d:\d\d \d{4} \S+$/);
    expect(lines[2]).toBe("Hosts marked with '*' were down as of the last delivery attempt.");
    const rows = lines.slice(6).filter((l) => l !== '').map((l) => l.trim().split(/\s+/));
    // #, host, active, conn out, delivered, soft, hard: all idle now, sorted (ties keep the queue first).
    expect(rows.map((x) => [x[0], x[1], x[2], x[4], x[5], x[6]])).toEqual([
      ['1', 'the.tdc.queue', '0', '5', '0', '0'],
      ['2', 'intake.test', '0', '3', '0', '0'],
      ['3', 'journal.finance.test', '0', '2', '0', '0'],
    ]);
  });

  it('`tdc-milter track QUEUEID` shows enqueued → delivered with a DCID and the 250 reply, per copy', async () => {
    const qid = queueIds['m4']!;
    const r = await runCli(['track', qid, '--config', configFile]);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    const blocks = r.stdout.trim().split('\n\n');
    expect(blocks).toHaveLength(2);
    const intakes = blocks.map((b) => /intake (\S+)/.exec(b)?.[1]).sort();
    expect(intakes).toEqual(['finance@journal.finance.test', 'global@intake.test']);
    for (const b of blocks) {
      const [summary, head] = b.split('\n');
      expect(summary).toMatch(/^\d\d \w{3} \d{4} \d\d:\d\d:\d\d \(GMT \+00:00\) TDC: Message \d+ was successfully delivered for scanning with Cisco Secure Email Threat Defense\.$/);
      expect(head).toMatch(new RegExp(`^copy ${qid}\\.[12]  MID \\d+  queue id ${qid}  Message-ID <m4@partner\\.test>`));
      const kinds = b.split('\n').slice(2, -1).map((l) => l.trim().split(/\s+/)[1]);
      expect(kinds[0]).toBe('enqueued');
      expect(kinds[kinds.length - 1]).toBe('delivered');
      expect(b).toMatch(/ delivered\s+DCID \d+\s+.*\b250\b/);
      expect(b).toMatch(/final state: delivered$/);
    }
    // By Message-ID too; and an unknown id is exit 1.
    const byMid = await runCli(['track', '<m1@partner.test>', '--config', configFile]);
    expect([byMid.status, byMid.stdout.split('\n\n').length]).toEqual([0, 1]);
    expect(byMid.stdout).toContain(`copy ${queueIds['m1']}.1`);
    const outgoing = await runCli(['track', queueIds['o1']!, '--config', configFile]);
    expect(outgoing.status).toBe(1);
    expect(outgoing.stderr).toMatch(/is not a copy id, MID, queue id or Message-ID in the recent history/);
  });
});

describe('status against a daemon that is not running', () => {
  it('says so and exits 1', async () => {
    const [milterPort, statusPort] = await freePorts(2);
    const file = writeConfig(`[milter]\nlisten = inet:127.0.0.1:${milterPort}\nstatus_listen = 127.0.0.1:${statusPort}\n`);
    try {
      const r = await runCli(['status', '--config', file]);
      expect(r.status).toBe(1);
      expect(r.stdout).toBe('');
      expect(r.stderr).toBe(`tdc-milter is not running (no status endpoint at 127.0.0.1:${statusPort})\n`);
      const t = await runCli(['track', 'ABC123', '--config', file]);
      expect([t.status, t.stderr]).toEqual([1, `tdc-milter is not running (no status endpoint at 127.0.0.1:${statusPort})\n`]);
    } finally {
      fs.rmSync(path.dirname(file), { recursive: true, force: true });
    }
  });
});
