/**
 * Faults on our side with the real daemon process (`node dist/lib/main.js run`) behind real Postfix:
 * a 50 MiB message over max_message_size (10 MiB) is delivered, its copy skipped with a log line, and
 * the daemon's peak RSS (VmHWM) grows by far less than the message; the daemon SIGKILLed mid-session
 * leaves Postfix (milter_default_action = accept) delivering; restarted on the same port it journals again;
 * SIGHUP every 100 ms under load, alternating a broken and a good file: nothing lost, old settings kept.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ScriptedIntake, closedPort } from '../support/scripted-intake';
import { DaemonProcess, writeConfig } from '../support/daemon-process';
import { startPostfix, type PostfixInstance } from '../support/postfix';
import { SmtpClient } from '../support/smtp-client';
import { until } from '../support/forwarder-harness';
import { finalLinesOf, outcomeOf } from '../support/gateway-log';

jest.setTimeout(120_000);

const CA_FILE = path.join(__dirname, '..', 'fixtures', 'tls', 'ca.crt');
const MiB = 1024 * 1024;

function configText(milterPort: number, intakePort: number): string {
  return `[milter]
listen = inet:127.0.0.1:${milterPort}
status_listen = no
hostname = gw.example.test
max_message_size = 10MiB

[tdc]
enabled = yes
intake_address = journal@intake.test
relay = [127.0.0.1]:${intakePort}
tls_ca_file = ${CA_FILE}
max_queue_age = 10s
retry_delay = 1s
`;
}

/** A /proc/PID/status field in KiB (VmRSS, VmHWM). */
function procKib(pid: number, field: 'VmRSS' | 'VmHWM'): number {
  const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (!m) throw new Error(`${field} not in /proc/${pid}/status`);
  return Number(m[1]);
}

function message(subject: string, body: string | Buffer = 'hello\r\n'): Buffer {
  return Buffer.concat([
    Buffer.from(`From: alice@partner.test\r\nTo: ann@example.test\r\nSubject: ${subject}\r\nMessage-ID: <${subject.replace(/\W/g, '')}@partner.test>\r\n\r\n`),
    typeof body === 'string' ? Buffer.from(body) : body,
  ]);
}

describe('the daemon process behind real Postfix: big messages, SIGKILL, restart', () => {
  let intake: ScriptedIntake;
  let postfix: PostfixInstance;
  let daemon: DaemonProcess | undefined;
  let configFile: string;
  let milterPort: number;

  beforeAll(async () => {
    intake = await ScriptedIntake.start();
    milterPort = await closedPort();
    configFile = writeConfig(configText(milterPort, intake.port), 'tdc-faults-');
    daemon = await DaemonProcess.start(configFile);
    postfix = await startPostfix({
      milters: `inet:127.0.0.1:${milterPort}`,
      milterDefaultAction: 'accept',
      mainCf: ['message_size_limit = 104857600', 'milter_connect_timeout = 2s', 'milter_command_timeout = 10s'],
    });
  });
  afterAll(async () => {
    await postfix?.stop();
    daemon?.kill();
    await intake?.close();
    fs.rmSync(path.dirname(configFile), { recursive: true, force: true });
  });

  it('a 50 MiB message over max_message_size: original delivered, copy skipped with a log line, daemon peak RSS grows < 80 MiB over two of them', async () => {
    const pid = daemon!.child.pid!;
    // Warm up (first TLS connection, code paths) with an ordinary journaled message.
    const warm = await SmtpClient.connect(postfix.smtpPort);
    await warm.ehlo('mx.partner.test');
    await warm.send({ from: 'alice@partner.test', to: ['ann@example.test'], data: message('warm up') });
    await warm.quit();
    await until(() => intake.received.length === 1, 15_000, 'the warm-up copy');
    const hwmBefore = procKib(pid, 'VmHWM');

    const line = 'x'.repeat(76) + '\r\n';
    const big = (n: number) => message(`fifty mebibytes ${n}`, Buffer.from(line.repeat(Math.ceil((50 * MiB) / line.length))));
    const growth: number[] = [];
    for (let n = 1; n <= 2; n++) {
      const data = big(n);
      expect(data.length).toBeGreaterThan(50 * MiB);
      const client = await SmtpClient.connect(postfix.smtpPort, { timeoutMs: 60_000 });
      await client.ehlo('mx.partner.test');
      const { queueId } = await client.send({ from: 'alice@partner.test', to: ['ann@example.test'], data });
      await client.quit();
      await postfix.waitForDelivered(1 + n, 60_000);
      await daemon!.waitForLine(new RegExp(`${queueId}: not journaled: message of \\d+ body bytes is over max_message_size \\(${10 * MiB}\\)`), 10_000);
      expect(daemon!.matching(new RegExp(`journal copy ${queueId}`))).toEqual([]);
      growth.push((procKib(pid, 'VmHWM') - hwmBefore) / 1024);
    }
    // At most max_message_size of body (10 MiB) is kept, plus one packet being assembled; the rest is
    // garbage (64 KiB packets) that V8 frees lazily: it collects once external memory has grown by its
    // 64 MiB soft limit. Measured 41-60 MiB after the first message and at most ~6 MiB more after the
    // second on 2 cores; bound 80 = 64 + the 10 MiB cap + slack, for 100 MiB through the milter.
    console.log(`50 MiB messages: daemon peak RSS growth ${growth.map((g) => g.toFixed(1)).join(' then ')} MiB`);
    expect(growth[0]!).toBeLessThan(80);
    expect(growth[1]!).toBeLessThan(80);
    expect(intake.received).toHaveLength(1);
  });

  it('SIGKILL mid-session: Postfix delivers on (default accept); restarted on the same port, journaling again', async () => {
    const delivered0 = postfix.delivered().length; // 3 so far
    // A session whose transaction the milter has seen up to RCPT when the daemon dies.
    const mid = await SmtpClient.connect(postfix.smtpPort);
    await mid.ehlo('mx.partner.test');
    await mid.mail('alice@partner.test');
    await mid.rcpt('ann@example.test');
    daemon!.signal('SIGKILL');
    expect((await daemon!.exited).signal).toBe('SIGKILL');
    const t0 = Date.now();
    const r = await mid.data(message('during the kill'));
    expect(r.code).toBe(250);
    await mid.quit();
    // New sessions while the daemon is down.
    const down = await SmtpClient.connect(postfix.smtpPort);
    await down.ehlo('mx.partner.test');
    for (let i = 0; i < 3; i++) await down.send({ from: 'alice@partner.test', to: ['ann@example.test'], data: message(`while down ${i}`) });
    await down.quit();
    await postfix.waitForDelivered(delivered0 + 4, 20_000);
    expect(Date.now() - t0).toBeLessThan(15_000);

    // Restart with the same config; the next message is journaled again.
    daemon = await DaemonProcess.start(configFile);
    const before = intake.received.length;
    const after = await SmtpClient.connect(postfix.smtpPort);
    await after.ehlo('mx.partner.test');
    const { queueId } = await after.send({ from: 'alice@partner.test', to: ['ann@example.test'], data: message('after restart') });
    await after.quit();
    await postfix.waitForDelivered(delivered0 + 5, 20_000);
    await until(() => intake.received.length === before + 1, 15_000, 'a copy from the restarted daemon');
    expect(intake.received[before]!.raw.toString('latin1')).toContain('Subject: after restart');
    await until(() => finalLinesOf(daemon!.lines, `${queueId}.1`).map(outcomeOf).join() === 'delivered', 10_000, 'the copy\'s delivered line');
  });

  it('SIGHUP under load, a broken config between good ones: every original delivered, every copy delivered, old settings kept on the bad one', async () => {
    const delivered0 = postfix.delivered().length;
    const received0 = intake.received.length;
    const good = configText(milterPort, intake.port);
    const ids: string[] = [];
    let sending = true;
    const hup = (async () => {
      for (let k = 0; sending; k++) {
        fs.writeFileSync(configFile, k % 2 === 0 ? `${good}\nbogus_key = 1\n` : good.replace('retry_delay = 1s', 'retry_delay = 2s'));
        daemon!.signal('SIGHUP');
        await new Promise((r) => setTimeout(r, 100));
      }
    })();
    await Promise.all(Array.from({ length: 3 }, async (_, w) => {
      const c = await SmtpClient.connect(postfix.smtpPort);
      await c.ehlo('mx.partner.test');
      for (let i = 0; i < 10; i++) {
        const { queueId } = await c.send({ from: 'alice@partner.test', to: ['ann@example.test'], data: message(`hup ${w}.${i}`) });
        ids.push(queueId!);
      }
      await c.quit();
    }));
    sending = false;
    await hup;
    fs.writeFileSync(configFile, good);
    await postfix.waitForDelivered(delivered0 + 30, 20_000);
    await until(() => ids.every((id) => finalLinesOf(daemon!.lines, `${id}.1`).length > 0), 20_000, 'a final line for every copy');
    expect(ids.map((id) => finalLinesOf(daemon!.lines, `${id}.1`).map(outcomeOf))).toEqual(ids.map(() => ['delivered']));
    const subjects = intake.received.slice(received0).map((r) => /Subject: (hup \d+\.\d+)/.exec(r.raw.toString('latin1'))?.[1]).sort();
    expect(subjects).toEqual(Array.from({ length: 3 }, (_, w) => Array.from({ length: 10 }, (_, i) => `hup ${w}.${i}`)).flat().sort());
    expect(daemon!.matching(/reload refused: .*bogus_key.*; old settings kept$/).length).toBeGreaterThan(0);
    expect(daemon!.matching(/configuration reloaded/).length).toBeGreaterThan(0);
    expect(daemon!.child.exitCode).toBeNull();
  });
});
