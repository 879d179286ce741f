/**
 * The real daemon's health and metrics listeners: `/readyz` turns 503 with its reason while the
 * intake refuses every attempt for ready_failing_time, and 200 again once a copy is delivered
 * (`/healthz` stays 200); `metrics_listen` on 0.0.0.0 answers a client in `metrics_allow` and
 * refuses one outside it (403), serving only /metrics, /healthz and /readyz; SIGHUP moves the
 * reload metrics. Loopback only: 127.0.0.2 plays the remote Prometheus.
 */
import * as path from 'node:path';
import { ScriptedIntake } from '../support/scripted-intake';
import { DaemonProcess, feedIncoming, writeConfig } from '../support/daemon-process';
import { freePorts } from '../support/mta-sandbox';
import { httpGet } from '../support/http-get';
import * as fs from 'node:fs';
import { finalLinesOf, midOfCopy, outcomeOf } from '../support/gateway-log';
import { until } from '../support/forwarder-harness';

const CA_FILE = path.join(__dirname, '..', 'fixtures', 'tls', 'ca.crt');

async function get(port: number, urlPath: string, localAddress?: string): Promise<{ status: number; body: string }> {
  const r = await httpGet(port, urlPath, localAddress);
  return { status: r.status, body: r.body };
}

/** Poll an async condition every 50 ms. */
async function eventually(pred: () => Promise<boolean>, ms: number, what: string): Promise<void> {
  const end = Date.now() + ms;
  while (!(await pred())) {
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

function sample(text: string, line: RegExp): number | undefined {
  const m = text.split('\n').map((l) => line.exec(l)).find((x) => x !== null);
  return m ? Number(m[1]) : undefined;
}

describe('health and metrics listeners of the real daemon', () => {
  let milterPort: number;
  let statusPort: number;
  let intakePort: number;
  let metricsPort: number;
  let daemon: DaemonProcess;
  let intake: ScriptedIntake | undefined;
  let configFile: string;

  const config = (allow: string) => `[milter]
listen = inet:127.0.0.1:${milterPort}
status_listen = 127.0.0.1:${statusPort}
metrics_listen = 0.0.0.0:0
metrics_allow = ${allow}
ready_failing_time = 2s
hostname = gw.example.test
drain_time = 1s

[tdc]
enabled = yes
intake_address = journal@intake.test
relay = [127.0.0.1]:${intakePort}
tls_ca_file = ${CA_FILE}
retry_delay = 500ms
max_queue_age = 3s
connect_timeout = 1s
`;

  beforeAll(async () => {
    [milterPort, statusPort, intakePort] = await freePorts(3);
    configFile = writeConfig(config('127.0.0.2/32'));
    daemon = await DaemonProcess.start(configFile);
    const line = await daemon.waitForLine(/metrics listener on http:\/\/0\.0\.0\.0:\d+\//, 15_000);
    metricsPort = Number(/0\.0\.0\.0:(\d+)/.exec(line)![1]);
  });

  afterAll(async () => {
    daemon?.signal('SIGTERM');
    await daemon?.exited;
    await intake?.close();
  });

  it('starts ready; /healthz answers on both listeners', async () => {
    expect(await get(statusPort, '/healthz')).toEqual({ status: 200, body: 'ok\n' });
    expect(await get(statusPort, '/readyz')).toEqual({ status: 200, body: 'ok\n' });
    expect(await get(metricsPort, '/healthz', '127.0.0.2')).toEqual({ status: 200, body: 'ok\n' });
  });

  it('metrics_allow: a client inside gets /metrics, one outside gets 403; other paths are not served', async () => {
    const inside = await get(metricsPort, '/metrics', '127.0.0.2');
    expect(inside.status).toBe(200);
    expect(inside.body).toMatch(/^tdc_build_info\{version="[^"]+",node="[^"]+"\} 1$/m);
    expect(inside.body).toMatch(/^tdc_queue_max_messages 1000$/m);
    const outside = await get(metricsPort, '/metrics', '127.0.0.1');
    expect(outside).toEqual({ status: 403, body: 'forbidden: 127.0.0.1 is not in metrics_allow\n' });
    expect((await get(metricsPort, '/readyz', '127.0.0.1')).status).toBe(403);
    for (const p of ['/status', '/track/x', '/']) expect([p, (await get(metricsPort, p, '127.0.0.2')).status]).toEqual([p, 404]);
  });

  it('/readyz: 503 with the reason while the intake refuses every attempt for ready_failing_time, 200 once a copy gets through', async () => {
    // Nothing listens on the intake port: every attempt is refused.
    await feedIncoming(milterPort, ['RDY1']);
    await until(() => {
      const mid = midOfCopy(daemon.lines, 'RDY1.1');
      return mid !== undefined && daemon.matching(new RegExp(`Delayed: DCID \\d+ MID ${mid} `)).length > 0;
    }, 15_000, 'the Delayed (retry) line of RDY1.1');
    let r = await get(statusPort, '/readyz');
    await eventually(async () => {
      r = await get(statusPort, '/readyz');
      return r.status === 503;
    }, 10_000, '/readyz to turn 503');
    expect(r.body).toMatch(/^not ready: intake failing: every delivery attempt for \d+ s has failed \(ready_failing_time 2 s\); last: .+\n$/);
    expect(r.body.split('\n')).toHaveLength(2); // one line
    expect((await get(metricsPort, '/readyz', '127.0.0.2')).status).toBe(503);
    expect((await get(statusPort, '/healthz')).status).toBe(200); // alive all along

    intake = await ScriptedIntake.start({ port: intakePort });
    await feedIncoming(milterPort, ['RDY2']);
    await until(() => finalLinesOf(daemon.lines, 'RDY2.1').map(outcomeOf).join() === 'delivered', 15_000, 'the delivered line of RDY2.1');
    expect(await get(statusPort, '/readyz')).toEqual({ status: 200, body: 'ok\n' });
    const metrics = (await get(metricsPort, '/metrics', '127.0.0.2')).body;
    expect(sample(metrics, /^tdc_last_delivered_timestamp_seconds\{destination="intake\.test"\} (\S+)$/)).toBeGreaterThan(Date.now() / 1000 - 60);
  });

  it('a copy given up after its retry is counted hard bounced (as the gateway counts it), not dropped', async () => {
    await eventually(async () => {
      const m = (await get(statusPort, '/metrics')).body;
      return sample(m, /^tdc_hard_bounced_total\{destination="the\.tdc\.queue"\} (\S+)$/) === 1;
    }, 10_000, 'RDY1.1 counted hard bounced');
    const m = (await get(statusPort, '/metrics')).body;
    expect(sample(m, /^tdc_dropped_total\{destination="the\.tdc\.queue",reason="retries_spent"\} (\S+)$/)).toBe(0);
    expect(sample(m, /^tdc_delivery_attempts_total\{outcome="soft",kind="network"\} (\S+)$/)).toBe(2);
  });

  it('SIGHUP: a good reload and a refused one show in the reload metrics', async () => {
    const reloadMetrics = async () => {
      const m = (await get(statusPort, '/metrics')).body;
      return [sample(m, /^tdc_config_last_reload_successful (\S+)$/), sample(m, /^tdc_config_last_reload_success_timestamp_seconds (\S+)$/)];
    };
    const [ok0, at0] = await reloadMetrics();
    expect(ok0).toBe(1);
    fs.writeFileSync(configFile, config('127.0.0.2/32').replace('ready_failing_time = 2s', 'ready_failing_time = forever'));
    daemon.signal('SIGHUP');
    await daemon.waitForLine(/reload refused/, 10_000);
    await eventually(async () => (await reloadMetrics())[0] === 0, 5000, 'reload_successful 0');
    expect((await reloadMetrics())[1]).toBe(at0);
    fs.writeFileSync(configFile, config('127.0.0.2/32'));
    daemon.signal('SIGHUP');
    await eventually(async () => (await reloadMetrics())[0] === 1, 5000, 'reload_successful 1');
    expect((await reloadMetrics())[1]).toBeGreaterThan(at0!);
  });
});
