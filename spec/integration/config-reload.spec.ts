/**
 * The real daemon (dist/lib/main.js run) listening on a Sendmail-style address (`inet:PORT@127.0.0.1`)
 * and journaling to a STARTTLS intake trusted through tls_ca_file. When the CA file becomes unreadable,
 * a SIGHUP is refused with ONE line, the old settings (CA bundle included) keep journaling, and /metrics
 * says so (tdc_config_last_reload_successful 0); once the file is back, a SIGHUP succeeds again.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { DaemonProcess, feedIncoming, writeConfig } from '../support/daemon-process';
import { until } from '../support/forwarder-harness';
import { freePorts } from '../support/mta-sandbox';
import { ScriptedIntake, TEST_CA_FILE } from '../support/scripted-intake';
import { finalLinesOf, outcomeOf } from '../support/gateway-log';
import { httpGet } from '../support/http-get';

async function getMetrics(port: number): Promise<string> {
  return (await httpGet(port, '/metrics')).body;
}

function metric(text: string, name: string): number | undefined {
  const m = new RegExp(`^${name} (\\S+)$`, 'm').exec(text);
  return m ? Number(m[1]) : undefined;
}

describe('reload with an unreadable CA file, through the real daemon', () => {
  let intake: ScriptedIntake;
  let daemon: DaemonProcess | undefined;

  afterAll(async () => {
    daemon?.kill();
    await intake?.close();
  });

  it('refuses with one line, keeps journaling with the old settings, and shows it in /metrics', async () => {
    intake = await ScriptedIntake.start();
    const [milterPort, statusPort] = await freePorts(2);
    const configFile = writeConfig('');
    const caFile = path.join(path.dirname(configFile), 'intake-ca.pem');
    fs.copyFileSync(TEST_CA_FILE, caFile);
    fs.writeFileSync(configFile, `[milter]
listen = inet:${milterPort}@127.0.0.1
status_listen = 127.0.0.1:${statusPort}
hostname = gw.example.test
drain_time = 1s

[tdc]
enabled = yes
intake_address = journal@intake.test
relay = [127.0.0.1]:${intake.port}
tls_ca_file = ${caFile}
retry_delay = 1s
connect_timeout = 2s
command_timeout = 5s
`);
    daemon = await DaemonProcess.start(configFile);
    // Sendmail's order in the file; the daemon says where it listens in Postfix's.
    expect(daemon.matching(/milter listening on/)).toEqual([expect.stringContaining(`milter listening on inet:127.0.0.1:${milterPort}`)]);
    await daemon.waitForLine(/status endpoint on/, 10_000); // it starts after the milter listener
    const started = await getMetrics(statusPort!);
    expect(metric(started, 'tdc_config_last_reload_successful')).toBe(1);
    const startedAt = metric(started, 'tdc_config_last_reload_success_timestamp_seconds')!;
    expect(Math.abs(startedAt - Date.now() / 1000)).toBeLessThan(60);

    await feedIncoming(milterPort!, ['CFGA1']);
    await until(() => intake.received.length === 1, 15_000, 'the first copy at the intake');

    fs.rmSync(caFile);
    const before = daemon.lines.length;
    daemon.signal('SIGHUP');
    await daemon.waitForLine(/reload refused/, 10_000);
    await new Promise((r) => setTimeout(r, 300)); // nothing else may follow it
    // The first copy's own lines (its delivery, the connection's idle close) may still come in.
    const afterHup = daemon.lines.slice(before).filter((l) => !/\b(MID|DCID) \d+/.test(l));
    expect(afterHup).toEqual([
      expect.stringMatching(new RegExp(`^(?:\\S+ )?Error: TDC: reload refused: ${configFile.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:11: tls_ca_file: ` +
        'expected a readable PEM CA bundle, got .*ENOENT.*; old settings kept$')),
    ]);
    expect(daemon.child.exitCode).toBeNull();
    const refused = await getMetrics(statusPort!);
    expect(metric(refused, 'tdc_config_last_reload_successful')).toBe(0);
    expect(metric(refused, 'tdc_config_last_reload_success_timestamp_seconds')).toBe(startedAt);

    // The old settings, with the CA bundle read at start, still journal over verified TLS.
    await feedIncoming(milterPort!, ['CFGA2']);
    await until(() => intake.received.length === 2, 15_000, 'the second copy at the intake');
    expect(intake.received.map((r) => r.secure)).toEqual([true, true]);
    // The intake may hold the copy a moment before the daemon has read its reply and logged it.
    await until(() => finalLinesOf(daemon!.lines, 'CFGA2.1').length > 0, 10_000, 'the delivered line of CFGA2.1');
    expect(finalLinesOf(daemon!.lines, 'CFGA2.1').map(outcomeOf)).toEqual(['delivered']);

    fs.copyFileSync(TEST_CA_FILE, caFile);
    daemon.signal('SIGHUP');
    await daemon.waitForLine(/configuration reloaded/, 10_000);
    const back = await getMetrics(statusPort!);
    expect(metric(back, 'tdc_config_last_reload_successful')).toBe(1);
    expect(metric(back, 'tdc_config_last_reload_success_timestamp_seconds')).toBeGreaterThan(startedAt);
    expect(daemon.matching(/uncaught|unhandled/)).toEqual([]);

    daemon.signal('SIGTERM');
    expect((await daemon.exited).code).toBe(0);
  });
});
