/**
 * The gateway's connection rule through real Postfix and the real daemon (dist/, spawned): a backlog
 * of ONE copy, held at the intake's DATA reply for a few seconds, has at least 3 connections open to
 * the intake (counted at the intake, in `tophosts` and in the status `connectionsOut`), and none about
 * 1 s after the queue drained. Imports spec support and lib/status's client only.
 */
import * as path from 'node:path';
import { fetchStatus, tophostsCommand } from '../../lib/status';
import { DaemonProcess, writeConfig } from '../support/daemon-process';
import { until } from '../support/forwarder-harness';
import { freePorts } from '../support/mta-sandbox';
import { startPostfix, type PostfixInstance } from '../support/postfix';
import { ScriptedIntake } from '../support/scripted-intake';
import { SmtpClient } from '../support/smtp-client';

jest.setTimeout(60_000);

const CA_FILE = path.join(__dirname, '..', 'fixtures', 'tls', 'ca.crt');
const HOLD_MS = 4000;

describe('at least 3 connections while the queue has entries (real Postfix, real daemon)', () => {
  let intake: ScriptedIntake | undefined;
  let daemon: DaemonProcess | undefined;
  let postfix: PostfixInstance | undefined;

  afterEach(async () => {
    await postfix?.stop();
    daemon?.kill();
    await daemon?.exited;
    await intake?.close();
  });

  it('a backlog of one copy held at DATA: >= 3 connections at the intake, in tophosts and status; none ~1 s after the drain', async () => {
    intake = await ScriptedIntake.start({ holdMs: HOLD_MS });
    const [milterPort, statusPort] = await freePorts(2);
    const status = `127.0.0.1:${statusPort}`;
    const conf = writeConfig([
      '[milter]', `listen = inet:127.0.0.1:${milterPort}`, `status_listen = ${status}`, 'hostname = gw.example.test', '',
      '[tdc]', 'enabled = yes', 'intake_address = journal@intake.test', `relay = [127.0.0.1]:${intake.port}`,
      `tls_ca_file = ${CA_FILE}`, 'min_connections = 3', 'command_timeout = 30s', '',
    ].join('\n'), 'tdc-minconn-');
    daemon = await DaemonProcess.start(conf);
    postfix = await startPostfix({ milters: `inet:127.0.0.1:${milterPort}` });

    const client = await SmtpClient.connect(postfix.smtpPort);
    await client.ehlo('mx.partner.test');
    await client.send({
      from: 'alice@partner.test', to: ['ann@example.test'],
      data: Buffer.from('From: alice@partner.test\r\nTo: ann@example.test\r\nSubject: one copy\r\nMessage-ID: <one@partner.test>\r\n\r\nhello\r\n'),
    });
    await client.quit();

    // The copy is held at DATA: the queue has one entry, and the gateway's rule keeps 3 connections.
    await until(() => intake!.transactions === 1, 15_000, 'the copy at the intake');
    await until(() => intake!.connectionsOpen >= 3, HOLD_MS - 1000, 'three connections at the intake');
    expect(intake.received).toHaveLength(0); // still held: the backlog has not drained
    const s = await fetchStatus(status);
    const row = s.domains.find((d) => d.destination === 'intake.test');
    expect(row).toMatchObject({ activeRecipients: 1 });
    expect(row!.connectionsOut).toBeGreaterThanOrEqual(3);
    expect(s.queue.connectionsOut).toBeGreaterThanOrEqual(3);
    const top = await tophostsCommand(status);
    const line = top.stdout.split('\n').find((l) => /\bintake\.test\b/.test(l));
    // Columns: #, Recipient Host, Active Recip., Conn. Out, Deliv. Recip., Soft Bounced, Hard Bounced.
    const cols = line!.trim().split(/\s+/);
    expect(cols[1]).toBe('intake.test');
    expect(Number(cols[2])).toBe(1);
    expect(Number(cols[3])).toBeGreaterThanOrEqual(3);

    // The copy goes through; about 1 s later every connection is closed.
    await until(() => intake!.received.length === 1, HOLD_MS + 10_000, 'the copy delivered');
    const drained = Date.now();
    await until(() => intake!.connectionsOpen === 0, 5000, 'every connection closed after the drain');
    const closedAfter = Date.now() - drained;
    expect(closedAfter).toBeGreaterThanOrEqual(500);
    expect(closedAfter).toBeLessThan(3000);
    const after = await fetchStatus(status);
    expect(after.queue.connectionsOut).toBe(0);
    expect(intake.connectionsTotal).toBeGreaterThanOrEqual(3);
  });
});
