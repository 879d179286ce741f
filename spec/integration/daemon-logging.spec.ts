/**
 * Where the real daemon process logs: `log_file` sends plain mail-log lines to that file (nothing on
 * stdout), `log_format = json` writes one JSON object per line to stdout. Both carry the `TDC:`
 * prefix and the same events: start, a journal decision, the delivery, SIGTERM and stop.
 */
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { ScriptedIntake } from '../support/scripted-intake';
import { DaemonProcess, feedIncoming, writeConfig } from '../support/daemon-process';
import { freePort } from '../support/mta-sandbox';
import { until } from '../support/forwarder-harness';
import { midOfCopy } from '../support/gateway-log';
import { spawn } from 'node:child_process';
import { MAIN, assertBuilt, cliEnv } from '../support/daemon-process';

const CA_FILE = path.join(__dirname, '..', 'fixtures', 'tls', 'ca.crt');
/** A line's text: `TDC: …`, or one of the gateway's lines that carry no `TDC:` (receiver-facts §3). */
const TEXT = '(?:TDC: \\S|DCID \\d+ |Message finished MID \\d+ |Bounced: DCID |DNS Error )';
/** The gateway's success line of the one copy a test sends. */
const DELIVERED = /TDC: MID \d+ successfully delivered for scanning with Cisco Secure Email Threat Defense\./;
/** The gateway's own mail-log form (receiver-facts §3): `Fri Feb 16 21:19:22 2024 Info: TDC: …`. */
const GATEWAY = new RegExp(`^(Sun|Mon|Tue|Wed|Thu|Fri|Sat) (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) [ \\d]\\d \\d\\d:\\d\\d:\\d\\d \\d{4} (Debug|Info|Warning|Error): ${TEXT}`);
/** Whether `lines` hold the success line of copy `copyId` (found by the MID its own line names). */
const deliveredIn = (lines: string[], copyId: string): boolean => {
  const mid = midOfCopy(lines, copyId);
  return mid !== undefined && lines.some((l) => l.includes(`TDC: MID ${mid} successfully delivered for scanning`));
};

function configText(milterPort: number, intakePort: number, milterExtra: string): string {
  return `[milter]
listen = inet:127.0.0.1:${milterPort}
status_listen = no
hostname = gw.example.test
drain_time = 5s
${milterExtra}

[tdc]
enabled = yes
intake_address = journal@intake.test
relay = [127.0.0.1]:${intakePort}
tls_ca_file = ${CA_FILE}
`;
}

describe('daemon logging', () => {
  let intake: ScriptedIntake;
  beforeAll(async () => {
    intake = await ScriptedIntake.start();
  });
  afterAll(async () => {
    await intake.close();
  });

  it('syslog_socket: lines reach the syslog socket with facility mail, tag and pid; none on stdout', async () => {
    // A stream socket stands in for /dev/log: logger(1) speaks both kinds.
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tdc-syslog-'));
    const sock = path.join(dir, 'log.sock');
    let received = '';
    const server = net.createServer((c) => c.on('data', (d: Buffer) => { received += d.toString('latin1'); }));
    await new Promise<void>((resolve) => server.listen(sock, () => resolve()));
    const port = await freePort();
    const conf = writeConfig(configText(port, intake.port, `syslog_socket = ${sock}`));
    const daemon = DaemonProcess.spawn(conf);
    try {
      await until(() => /TDC: milter listening on/.test(received), 15_000, 'the listening line at the syslog socket');
      await feedIncoming(port, ['SYSL1']);
      await until(() => /TDC: MID \d+ copy SYSL1\.1 of queue id/.test(received) && DELIVERED.test(received), 15_000, 'the delivery line at the syslog socket');
      daemon.signal('SIGTERM');
      expect((await daemon.exited).code).toBe(0);
      const lines = received.split('\n').filter((l) => l !== '');
      const pid = daemon.child.pid!;
      // <22> = facility mail (2) * 8 + info (6); <20> = warning.
      expect(lines.find((l) => /milter listening on/.test(l))).toMatch(new RegExp(`^<22>.* tdc-milter\\[${pid}\\]: TDC: milter listening on inet:127\\.0\\.0\\.1:${port}$`));
      expect(lines.filter((l) => !new RegExp(`^<2[0-3]>\\w{3} [ \\d]\\d \\d\\d:\\d\\d:\\d\\d tdc-milter\\[\\d+\\]: ${TEXT}`).test(l))).toEqual([]);
      expect(daemon.lines.filter((l) => l !== '')).toEqual([]); // nothing on stdout or stderr
    } finally {
      daemon.signal('SIGKILL');
      await new Promise<void>((resolve) => server.close(() => resolve()));
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('log_file: lines in the gateway\'s own form go to the file, none to stdout', async () => {
    const port = await freePort();
    const conf = writeConfig(configText(port, intake.port, 'log_file = PLACEHOLDER'));
    const logFile = path.join(path.dirname(conf), 'tdc-milter.log');
    fs.writeFileSync(conf, fs.readFileSync(conf, 'utf8').replace('PLACEHOLDER', logFile));
    const daemon = DaemonProcess.spawn(conf);
    const fileLines = (): string[] => (fs.existsSync(logFile) ? fs.readFileSync(logFile, 'utf8').split('\n').filter((l) => l !== '') : []);
    try {
      await until(() => fileLines().some((l) => /milter listening on inet:127\.0\.0\.1:/.test(l)), 15_000, 'the listening line in the log file');
      await feedIncoming(port, ['LOGF1']);
      await until(() => fileLines().some((l) => /TDC: MID \d+ copy LOGF1\.1 of queue id/.test(l)) && fileLines().some((l) => DELIVERED.test(l)), 15_000, 'the delivery line in the log file');
      daemon.signal('SIGTERM');
      const exit = await daemon.exited;
      expect(exit.code).toBe(0);

      const lines = fileLines();
      expect(lines.filter((l) => !GATEWAY.test(l))).toEqual([]);
      for (const re of [/TDC: starting tdc-milter with /, /TDC: LOGF1: journal copy LOGF1\.1 for 1 recipient\(s\) \(policy DEFAULT\) to journal@intake\.test$/,
        /TDC: SIGTERM received: /, /TDC: drain finished after /, /TDC: stopped$/]) {
        expect([re, lines.filter((l) => re.test(l)).length]).toEqual([re, 1]);
      }
      expect(daemon.lines.filter((l) => l.trim() !== '')).toEqual([]); // stdout and stderr stay empty
    } finally {
      daemon.kill();
    }
  });

  it('log_format = json: one JSON object per stdout line with time, level and the TDC: message', async () => {
    const port = await freePort();
    const daemon = await DaemonProcess.start(writeConfig(configText(port, intake.port, 'log_format = json')));
    try {
      await feedIncoming(port, ['LOGJ1']);
      await daemon.waitForLine(DELIVERED, 15_000);
      daemon.signal('SIGTERM');
      expect((await daemon.exited).code).toBe(0);

      const lines = daemon.lines.filter((l) => l !== '');
      const docs = lines.map((l) => JSON.parse(l) as { time: string; level: string; message: string });
      for (const d of docs) {
        expect(Object.keys(d).sort()).toEqual(['level', 'message', 'time']);
        expect(d.time).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
        expect(['debug', 'info', 'warning', 'error']).toContain(d.level);
        expect(d.message).toMatch(new RegExp(`^${TEXT}`));
      }
      const messages = docs.map((d) => d.message);
      expect(messages).toContain('TDC: LOGJ1: journal copy LOGJ1.1 for 1 recipient(s) (policy DEFAULT) to journal@intake.test');
      expect(messages.filter((m) => /^TDC: milter listening on inet:127\.0\.0\.1:\d+/.test(m))).toHaveLength(1);
      expect(docs.find((d) => /TDC: MID \d+ copy LOGJ1\.1 of queue id/.test(d.message))?.level).toBe('info');
      expect(docs.find((d) => DELIVERED.test(d.message))?.level).toBe('info');
      expect(messages[messages.length - 1]).toBe('TDC: stopped');
    } finally {
      daemon.kill();
    }
  });

  it('journald: with $JOURNAL_STREAM naming stdout, lines carry <N> priorities and no timestamp of ours', async () => {
    // systemd hands the daemon a stream and names it in JOURNAL_STREAM=DEV:INODE; a file does the same here.
    assertBuilt();
    const port = await freePort();
    // An intake that answers 451: a warning line (Delayed, the retry) next to info lines.
    const refusing = await ScriptedIntake.start({ replies: [{ stage: 'rcpt', code: 451, message: '4.3.0 not now' }] });
    const conf = writeConfig(configText(port, refusing.port, 'log_level = debug'));
    const out = path.join(path.dirname(conf), 'journal-stream');
    const fd = fs.openSync(out, 'a');
    const st = fs.fstatSync(fd);
    const child = spawn(process.execPath, [MAIN, 'run', '--config', conf], {
      env: { ...cliEnv(), JOURNAL_STREAM: `${st.dev}:${st.ino}` },
      stdio: ['ignore', fd, fd],
    });
    fs.closeSync(fd);
    const lines = (): string[] => fs.readFileSync(out, 'utf8').split('\n').filter((l) => l !== '');
    try {
      await until(() => lines().some((l) => /milter listening on/.test(l)), 15_000, 'the listening line');
      await feedIncoming(port, ['JRNL1']);
      const delayed = (l: string): boolean => { const mid = midOfCopy(lines(), 'JRNL1.1'); return mid !== undefined && l.includes(`Delayed: DCID `) && l.includes(` MID ${mid} `); };
      await until(() => lines().some(delayed), 15_000, 'the Delayed (retry) line');
      child.kill('SIGTERM');
      await until(() => lines().some((l) => /TDC: stopped$/.test(l)), 15_000, `the stopped line; got:\n${lines().join('\n')}`);
      const all = lines();
      expect(all.filter((l) => !new RegExp(`^<[3467]>(Debug|Info|Warning|Error): ${TEXT}`).test(l))).toEqual([]);
      expect(all.find((l) => /milter listening on/.test(l))).toMatch(/^<6>Info: TDC: milter listening on inet:127\.0\.0\.1:\d+$/);
      expect(all.find(delayed)).toMatch(/^<4>Warning: TDC: Delayed: /);
      expect(all.some((l) => l.startsWith('<7>Debug: '))).toBe(true);
      expect(all.filter((l) => /\d\d:\d\d:\d\d/.test(l))).toEqual([]); // no timestamp of our own
    } finally {
      child.kill('SIGKILL');
      await refusing.close();
    }
  });

  it('without $JOURNAL_STREAM naming stdout (inherited, stdout redirected), lines keep their timestamp', async () => {
    const port = await freePort();
    const daemon = DaemonProcess.spawn(writeConfig(configText(port, intake.port, '')));
    try {
      await daemon.waitForLine(/milter listening on/, 15_000);
      expect(daemon.lines.find((l) => /milter listening on/.test(l))).toMatch(/^\d{4}-\d\d-\d\dT[\d:.]+Z Info: TDC: milter listening on /);
    } finally {
      daemon.kill();
    }
  });

  it('log_file: SIGUSR1 reopens the file after logrotate renamed it; no line is lost', async () => {
    const port = await freePort();
    const conf = writeConfig(configText(port, intake.port, 'log_file = PLACEHOLDER'));
    const logFile = path.join(path.dirname(conf), 'tdc-milter.log');
    const rotated = `${logFile}.1`;
    fs.writeFileSync(conf, fs.readFileSync(conf, 'utf8').replace('PLACEHOLDER', logFile));
    const daemon = DaemonProcess.spawn(conf);
    const read = (f: string): string[] => (fs.existsSync(f) ? fs.readFileSync(f, 'utf8').split('\n').filter((l) => l !== '') : []);
    try {
      await until(() => read(logFile).some((l) => /milter listening on/.test(l)), 15_000, 'the listening line in the log file');
      fs.renameSync(logFile, rotated); // what logrotate does
      await feedIncoming(port, ['ROT1']); // written to the renamed file: the daemon still holds it open
      await until(() => deliveredIn(read(rotated), 'ROT1.1'), 15_000, 'ROT1 in the rotated file');
      daemon.signal('SIGUSR1');
      await until(() => read(logFile).some((l) => /SIGUSR1: log file .* reopened$/.test(l)), 15_000, 'the reopen line in the new file');
      await feedIncoming(port, ['ROT2']);
      await until(() => deliveredIn(read(logFile), 'ROT2.1'), 15_000, 'ROT2 in the new file');
      daemon.signal('SIGTERM');
      expect((await daemon.exited).code).toBe(0);
      expect(read(rotated).filter((l) => /ROT2/.test(l))).toEqual([]);
      expect(read(logFile).filter((l) => /ROT1/.test(l))).toEqual([]);
      expect(read(logFile).filter((l) => !GATEWAY.test(l))).toEqual([]);
      expect(read(logFile).some((l) => /TDC: stopped$/.test(l))).toBe(true);
    } finally {
      daemon.kill();
    }
  });
});
