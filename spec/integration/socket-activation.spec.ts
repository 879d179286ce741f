/**
 * Socket activation on the real daemon under systemd's own systemd-socket-activate (the socket served,
 * READY=1/STOPPING=1 to a NOTIFY_SOCKET read by perl), a foreign LISTEN_PID ignored, and after SIGTERM
 * an open milter connection served until the MTA closes it, within drain_time.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { DaemonProcess, loopbackJournalConfig, writeConfig } from '../support/daemon-process';
import { MilterClient, POSTFIX_OFFER } from '../support/milter-client';
import { freePort, pollUntil } from '../support/mta-sandbox';
import { ScriptedIntake, TEST_CA_FILE } from '../support/scripted-intake';

const SOCKET_ACTIVATE = '/usr/bin/systemd-socket-activate';
const MARGIN_MS = 1500;

function configText(milterPort: number, intakePort: number, drainTime = '10s'): string {
  return loopbackJournalConfig(milterPort, intakePort, TEST_CA_FILE, { milter: [`drain_time = ${drainTime}`], tdc: ['retry_delay = 1s'] });
}

/** A milter connection as Postfix opens it for one SMTP session. */
async function openSession(port: number): Promise<MilterClient> {
  const c = await MilterClient.connect({ port }, { replyTimeoutMs: 20_000 });
  await c.negotiate(POSTFIX_OFFER);
  c.macro('C', { j: 'mx.example.test', '{daemon_name}': 'smtpd', '{client_addr}': '192.0.2.7' });
  await c.connectInfo('mx.partner.test', '4', 40000, '192.0.2.7');
  await c.helo('mx.partner.test');
  return c;
}

/** One incoming message on an open session; expects "continue" at end-of-body. */
async function sendMessage(c: MilterClient, qid: string): Promise<void> {
  c.macro('M', { i: qid, '{mail_addr}': 'alice@partner.test' });
  await c.mail('<alice@partner.test>');
  await c.rcpt('<ann@example.test>');
  for (const [name, value] of [['From', ' alice@partner.test'], ['To', ' ann@example.test'], ['Subject', ` ${qid}`]] as const) await c.header(name, value);
  await c.eoh();
  await c.body(`message ${qid}\r\n`);
  c.macro('E', { i: qid });
  const replies = (await c.eob()).map((r) => r.char).join('');
  expect(replies).toBe('c');
}

/** Prints every datagram sent to a unix datagram socket at `socketPath` (what systemd's NOTIFY_SOCKET is). */
class NotifyReader {
  readonly messages: string[] = [];
  readonly #child: ChildProcess;
  private constructor(readonly socketPath: string) {
    const script = 'use Socket; $| = 1; socket(my $s, PF_UNIX, SOCK_DGRAM, 0) or die "socket: $!"; ' +
      'bind($s, pack_sockaddr_un($ARGV[0])) or die "bind: $!"; print "bound\\n"; ' +
      'while (defined recv($s, my $m, 65536, 0)) { $m =~ s/\\n/|/g; print "$m\\n"; }';
    this.#child = spawn('/usr/bin/perl', ['-e', script, socketPath], { stdio: ['ignore', 'pipe', 'inherit'] });
    let partial = '';
    this.#child.stdout!.on('data', (d: Buffer) => {
      const parts = (partial + d.toString('utf8')).split('\n');
      partial = parts.pop()!;
      this.messages.push(...parts);
    });
  }
  static async start(socketPath: string): Promise<NotifyReader> {
    const r = new NotifyReader(socketPath);
    await pollUntil(() => (r.messages.includes('bound') ? true : undefined), 10_000, () => 'the notify reader did not bind');
    return r;
  }
  stop(): void {
    this.#child.kill('SIGKILL');
  }
}

describe('socket activation (systemd-socket-activate)', () => {
  it('serves the socket systemd passes, says so, reports READY=1 and STOPPING=1, and journals through it', async () => {
    if (!fs.existsSync(SOCKET_ACTIVATE)) throw new Error(`${SOCKET_ACTIVATE} not found: install the Debian package systemd (.ci/run does)`);
    const intake = await ScriptedIntake.start();
    const port = await freePort();
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tdc-notify-'));
    const notify = await NotifyReader.start(path.join(dir, 'notify'));
    // The configured listen port is another one: with a socket passed, listen is not bound.
    const otherPort = await freePort();
    const daemon = DaemonProcess.spawn(writeConfig(configText(otherPort, intake.port)), {
      wrapper: [SOCKET_ACTIVATE, '-l', `127.0.0.1:${port}`, '--fdname=milter', '-E', `NOTIFY_SOCKET=${notify.socketPath}`],
    });
    try {
      await daemon.waitForLine(new RegExp(`Listening on 127\\.0\\.0\\.1:${port} as 3`), 10_000);
      // systemd-socket-activate starts the daemon on the first connection, as systemd does.
      const c = await openSession(port);
      await sendMessage(c, 'ACT1');
      c.quit();
      await c.end();
      expect(daemon.matching(/TDC: milter listening on/)).toEqual([
        expect.stringMatching(new RegExp(`Info: TDC: milter listening on inet:127\\.0\\.0\\.1:${port} \\(socket "milter" passed by systemd, fd 3; listen = inet:127\\.0\\.0\\.1:${otherPort} in the configuration is not used\\)$`)),
      ]);
      await pollUntil(() => (notify.messages.some((m) => /READY=1/.test(m)) ? true : undefined), 10_000, () => `no READY=1; got ${JSON.stringify(notify.messages)}`);
      expect(notify.messages.find((m) => /READY=1/.test(m))).toMatch(new RegExp(`MAINPID=${daemon.child.pid}`));
      await daemon.waitForLine(/Message done .* MID ACT1\.1 /, 15_000);
      daemon.signal('SIGTERM');
      const exit = await daemon.exited;
      expect(exit.code).toBe(0);
      expect(notify.messages.some((m) => /STOPPING=1/.test(m))).toBe(true);
      expect(intake.received).toHaveLength(1);
    } finally {
      daemon.kill();
      notify.stop();
      fs.rmSync(dir, { recursive: true, force: true });
      await intake.close();
    }
  }, 40_000);

  it('ignores LISTEN_FDS whose LISTEN_PID names another process, with a warning, and binds listen itself', async () => {
    const port = await freePort();
    const daemon = await DaemonProcess.start(writeConfig(configText(port, 9)), 15_000, { env: { LISTEN_FDS: '1', LISTEN_PID: '1' } });
    try {
      expect(daemon.matching(/Warning: TDC: socket activation not used: LISTEN_PID=1 names another process \(this is \d+\); binding listen itself/)).toHaveLength(1);
      expect(daemon.matching(/TDC: milter listening on/)).toEqual([expect.stringMatching(new RegExp(`milter listening on inet:127\\.0\\.0\\.1:${port}$`))]);
    } finally {
      daemon.kill();
    }
  }, 30_000);
});

describe('SIGTERM keeps serving open milter connections', () => {
  it('a session open at SIGTERM is still served and journaled until the MTA closes it; then the queue drains and the daemon exits 0', async () => {
    const intake = await ScriptedIntake.start();
    const port = await freePort();
    const daemon = await DaemonProcess.start(writeConfig(configText(port, intake.port, '20s')));
    try {
      const c = await openSession(port);
      await sendMessage(c, 'OPEN1');
      daemon.signal('SIGTERM');
      await daemon.waitForLine(/TDC: 1 milter connection\(s\) open: serving them until the MTA closes them, for up to 20s \(drain_time\)/, 10_000);
      // New connections are no longer accepted...
      await expect(MilterClient.connect({ port })).rejects.toThrow(/ECONNREFUSED/);
      // ...but the open session's next message is answered and journaled.
      await sendMessage(c, 'OPEN2');
      c.quit();
      await c.end();
      const exit = await daemon.exited;
      expect(exit.code).toBe(0);
      expect(daemon.matching(/TDC: OPEN2: journal copy OPEN2\.1 for 1 recipient\(s\)/)).toHaveLength(1);
      expect(daemon.matching(/TDC: drain finished after [\d.]+s: \d+ delivered, 0 hard bounced, 0 dropped, 0 left in the queue/)).toHaveLength(1);
      const subjects = intake.received.map((r) => /^Subject: (\S+)/m.exec(r.raw.toString('latin1'))?.[1]).sort();
      expect(subjects).toEqual(['OPEN1', 'OPEN2']);
    } finally {
      daemon.kill();
      await intake.close();
    }
  }, 40_000);

  it('a session the MTA never closes is cut at drain_time, and the daemon still exits 0 within it', async () => {
    const intake = await ScriptedIntake.start();
    const port = await freePort();
    const daemon = await DaemonProcess.start(writeConfig(configText(port, intake.port, '2s')));
    try {
      const c = await openSession(port);
      daemon.signal('SIGTERM');
      await c.waitClosed();
      const exit = await daemon.exited;
      expect(exit.code).toBe(0);
      expect(exit.afterSignalMs).toBeGreaterThanOrEqual(1900);
      expect(exit.afterSignalMs).toBeLessThan(2000 + MARGIN_MS);
      expect(daemon.matching(/TDC: milter: 1 session\(s\) still open 2000 ms after shutdown began; closing them/)).toHaveLength(1);
    } finally {
      daemon.kill();
      await intake.close();
    }
  }, 30_000);
});
