/**
 * `npm run demo`: see tdc-milter work in seconds. Starts a throwaway Postfix on loopback, the milter
 * (TdcApp in-process, status endpoint on), a local STARTTLS message intake (test CA), sends a few
 * inbound and outbound messages across policies, prints the `TDC:` log lines, `tdc-milter status`, `tophosts` and
 * one `tdc-milter track`, then cleans up. Needs root and Postfix. Imports lib/ and spec/support/ only.
 */
import * as fs from 'node:fs';
import { PassThrough } from 'node:stream';
import { TdcApp } from '../lib/app';
import { parseConfigText } from '../lib/config';
import { createLogger } from '../lib/util/logger';
import { describeError } from '../lib/util/errors';
import { statusCommand, tophostsCommand, trackCommand, type StatusJson } from '../lib/status';
import { fetchStatus } from '../lib/status/client';
import { startPostfix, type PostfixInstance } from '../spec/support/postfix';
import { ScriptedIntake, TEST_CA_FILE } from '../spec/support/scripted-intake';
import { SmtpClient } from '../spec/support/smtp-client';

export interface DemoResult {
  /** The `tdc-milter status` text at the end. */
  statusTable: string;
  status: StatusJson;
  /** Every log line of the milter (with the `TDC:` prefix). */
  logLines: string[];
  /** Journal copies the intake accepted. */
  intakeReceived: number;
  /** Originals Postfix delivered (one per recipient). */
  originalsDelivered: number;
  /** The throwaway Postfix's directory (removed when the demo ends). */
  postfixDir: string;
}

const DOMAINS = ['example.test', 'finance.example.test', 'lab.example.test'];

function demoConfig(intakePort: number): string {
  return `# the demo's milter.conf
[milter]
listen = inet:127.0.0.1:0
status_listen = 127.0.0.1:0
hostname = gw.example.test
drain_time = 5s

[tdc]
enabled = yes
intake_address = journal@intake.example.net
relay = [127.0.0.1]:${intakePort}
tls_ca_file = ${TEST_CA_FILE}
connect_timeout = 2s
command_timeout = 5s

[policy finance]
recipients = @finance.example.test
tdc = custom
intake_address = finance@journal.example.org

[policy lab]
recipients = @lab.example.test
tdc = no

[policy DEFAULT]
tdc = global
`;
}

interface DemoMail {
  listener: 'smtp' | 'originating';
  from: string;
  to: string[];
  subject: string;
}

const MAILS: DemoMail[] = [
  { listener: 'smtp', from: 'alice@partner.example', to: ['ann@example.test'], subject: 'Quarterly report' },
  { listener: 'smtp', from: 'billing@supplier.example', to: ['bob@finance.example.test'], subject: 'Invoice 4711' },
  { listener: 'smtp', from: 'robot@vendor.example', to: ['cy@lab.example.test'], subject: 'Lab results' },
  { listener: 'smtp', from: 'alice@partner.example', to: ['ann@example.test', 'bob@finance.example.test', 'cy@lab.example.test'], subject: 'Team lunch' },
  { listener: 'originating', from: 'ann@example.test', to: ['dee@example.test'], subject: 'Re: Quarterly report' },
  { listener: 'originating', from: 'bob@finance.example.test', to: ['ann@example.test'], subject: 'Budget' },
];

function mailBytes(m: DemoMail, n: number): Buffer {
  return Buffer.from(
    `From: ${m.from}\r\nTo: ${m.to.join(', ')}\r\nSubject: ${m.subject}\r\nMessage-ID: <demo-${n}@example.test>\r\n` +
      `Date: ${new Date().toUTCString()}\r\n\r\nHello from the tdc-milter demo.\r\n`,
    'latin1',
  );
}

async function waitFor(pred: () => boolean, ms: number, what: string): Promise<void> {
  const end = Date.now() + ms;
  while (!pred()) {
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Why the demo cannot run here, or undefined. */
export function demoPrerequisiteProblem(): string | undefined {
  const problems: string[] = [];
  if (typeof process.getuid === 'function' && process.getuid() !== 0) problems.push('run it as root (it starts a private Postfix and uses unshare -m)');
  if (!fs.existsSync('/usr/sbin/postfix')) problems.push('install Postfix (Debian/Ubuntu: apt-get install postfix; the system instance need not run)');
  if (!fs.existsSync('/usr/bin/unshare') && !fs.existsSync('/bin/unshare')) problems.push('install util-linux (unshare)');
  return problems.length === 0 ? undefined : `the demo needs root and Postfix: ${problems.join('; ')}`;
}

/** Run the whole demo; `write` gets the text to show. Cleans up even when something fails. */
export async function runDemo(write: (text: string) => void = (t) => process.stdout.write(t)): Promise<DemoResult> {
  const logLines: string[] = [];
  let showLog = true;
  const stream = new PassThrough();
  let partial = '';
  stream.on('data', (d: Buffer) => {
    const parts = (partial + d.toString('utf8')).split('\n');
    partial = parts.pop()!;
    for (const l of parts) {
      logLines.push(l);
      if (showLog) write(`  ${l}\n`);
    }
  });
  const logger = createLogger({ level: 'info', format: 'plain', stream });

  let intake: ScriptedIntake | undefined;
  let app: TdcApp | undefined;
  let postfix: PostfixInstance | undefined;
  try {
    intake = await ScriptedIntake.start();
    const parsed = parseConfigText(demoConfig(intake.port), 'demo milter.conf');
    if (!parsed.ok) throw new Error(parsed.errors.join('\n'));
    write(`== starting: STARTTLS intake on 127.0.0.1:${intake.port}, the milter, a throwaway Postfix\n`);
    app = await TdcApp.start(parsed.config, { logger });
    postfix = await startPostfix({
      milters: app.milter.listenAddress,
      virtualDomains: DOMAINS,
      listeners: { originating: { overrides: { milter_macro_daemon_name: 'ORIGINATING' } } },
    });
    write(`  Postfix smtpd on 127.0.0.1:${postfix.smtpPort} (inbound), 127.0.0.1:${postfix.ports['originating']} (ORIGINATING = outbound)\n`);
    write(`  policies: finance (@finance.example.test) -> finance@journal.example.org, lab (@lab.example.test) -> tdc = no,\n`);
    write(`            DEFAULT -> journal@intake.example.net\n\n== sending ${MAILS.length} messages through Postfix\n`);

    let recipients = 0;
    let n = 0;
    const queueIds: (string | undefined)[] = [];
    for (const m of MAILS) {
      n += 1;
      const dir = m.listener === 'smtp' ? 'inbound ' : 'outbound';
      write(`  >> ${dir} ${m.from} -> ${m.to.join(', ')}  "${m.subject}"\n`);
      const client = await SmtpClient.connect(postfix.ports[m.listener]!);
      await client.ehlo(m.listener === 'smtp' ? 'mx.partner.example' : 'workstation.example.test');
      const { queueId } = await client.send({ from: m.from, to: m.to, data: mailBytes(m, n) });
      await client.quit();
      recipients += m.to.length;
      queueIds.push(queueId);
    }
    await postfix.waitForDelivered(recipients, 30_000);
    const a = app;
    await waitFor(() => a.forwarder.counters().enqueued > 0 && a.forwarder.counters().activeRecipients === 0, 30_000, 'the journal copies to leave the queue');
    // Let the last log lines through the stream; the shutdown's lines are kept but not shown.
    await new Promise((r) => setTimeout(r, 50));
    showLog = false;

    const listen = app.statusAddress!;
    const status = await statusCommand(listen);
    write(`\n== tdc-milter status\n${status.stdout}${status.stderr}`);
    const top = await tophostsCommand(listen);
    write(`\n== tdc-milter tophosts   (the gateway's layout)\n${top.stdout}${top.stderr}`);
    const lunch = queueIds[3];
    if (lunch !== undefined) {
      const track = await trackCommand(listen, lunch);
      write(`\n== tdc-milter track ${lunch}   ("Team lunch": one copy per intake, none for lab)\n${track.stdout}${track.stderr}`);
    }
    const doc = await fetchStatus(listen);
    const originals = postfix.delivered().length;
    write(
      `\n== done: ${originals} originals delivered by Postfix, ${intake.received.length} journal copies accepted by the intake ` +
        `(${[...new Set(intake.received.map((r) => r.tlsProtocol))].join(', ')})\n`,
    );
    return { statusTable: status.stdout, status: doc, logLines, intakeReceived: intake.received.length, originalsDelivered: originals, postfixDir: postfix.dir };
  } finally {
    await postfix?.stop().catch(() => undefined);
    await app?.stop(1000).catch(() => undefined);
    await intake?.close().catch(() => undefined);
    await logger.close();
  }
}

async function main(): Promise<number> {
  const problem = demoPrerequisiteProblem();
  if (problem !== undefined) {
    process.stderr.write(`tdc-milter demo: ${problem}\n`);
    return 1;
  }
  try {
    await runDemo();
    return 0;
  } catch (err) {
    process.stderr.write(`tdc-milter demo failed: ${describeError(err)}\n`);
    return 1;
  }
}

if (require.main === module) {
  void main().then((code) => process.exit(code));
}
