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

const CA_FILE = path.join(__dirname, '..', 'fixtures', 'tls', 'ca.crt');
/** A line's text: `TDC: …`, or one of the gateway's lines that carry no `TDC:` (receiver-facts §3). */
const TEXT = '(?:TDC: \\S|DCID \\d+ |Message finished MID \\d+ |Bounced: DCID |DNS Error )';
const PLAIN = new RegExp(`^\\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\d\\.\\d{3}Z (Debug|Info|Warning|Error): ${TEXT}`);
/** The gateway's success line of the one copy a test sends. */
const DELIVERED = /TDC: MID \d+ successfully delivered for scanning with Cisco Secure Email Threat Defense\./;

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

  it('log_file: plain lines go to the file, none to stdout', async () => {
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
      expect(lines.filter((l) => !PLAIN.test(l))).toEqual([]);
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
});
