/**
 * SIGTERM on the real daemon process (dist/lib/main.js run --config FILE) with journal copies queued
 * against a slow or dead STARTTLS intake: every copy ends delivered or logged as dropped, and the
 * process exits 0 within [milter] drain_time (plus a small margin); a drain that finishes early exits
 * early. Messages are fed by our milter client playing the MTA.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ScriptedIntake, SilentServer } from '../support/scripted-intake';
import { DaemonProcess, feedIncoming as feed, loopbackJournalConfig, writeConfig } from '../support/daemon-process';
import { freePort } from '../support/mta-sandbox';
import { until } from '../support/forwarder-harness';

const CA_FILE = path.join(__dirname, '..', 'fixtures', 'tls', 'ca.crt');
/** Process exit, log flushing and timer slack on a busy 2-core machine. */
const MARGIN_MS = 1500;

function configText(milterPort: number, intakePort: number, drainTime: string): string {
  return loopbackJournalConfig(milterPort, intakePort, CA_FILE, {
    milter: [`drain_time = ${drainTime}`],
    tdc: ['max_queue_age = 60s', 'retry_delay = 1s', 'min_connections = 1', 'max_connections = 1', 'messages_per_connection = 100',
      'connect_timeout = 10s', 'command_timeout = 30s'],
  });
}

/** Per copy id: 'delivered', 'dropped: <reason>' or undefined (no final log line). */
function outcomes(d: DaemonProcess, ids: string[]): Map<string, string | undefined> {
  const out = new Map<string, string | undefined>();
  for (const id of ids) {
    const done = d.matching(new RegExp(`Message done.* MID ${id.replace('.', '\\.')} `));
    const dropped = d.lines.map((l) => new RegExp(`MID ${id.replace('.', '\\.')} dropped from the\\.tdc\\.queue: (.*)$`).exec(l)).find((m) => m !== null);
    out.set(id, done.length > 0 ? 'delivered' : dropped ? `dropped: ${dropped[1]}` : undefined);
  }
  return out;
}

describe('SIGTERM drains the queue for drain_time, then exits 0', () => {
  it('slow intake: copies in time are delivered, the rest dropped ("shutting down"); exit 0 within drain_time', async () => {
    const intake = await ScriptedIntake.start({ holdMs: 1000 });
    const port = await freePort();
    const daemon = await DaemonProcess.start(writeConfig(configText(port, intake.port, '3s')));
    try {
      const qids = ['DRAIN1', 'DRAIN2', 'DRAIN3', 'DRAIN4', 'DRAIN5', 'DRAIN6', 'DRAIN7', 'DRAIN8'];
      await feed(port, qids);
      // The first copy is at the intake (held): the queue is busy when the signal comes.
      await until(() => intake.transactions >= 1, 10_000, 'the first copy to reach the intake');
      daemon.signal('SIGTERM');
      const exit = await daemon.exited;

      expect(exit.code).toBe(0);
      expect(exit.afterSignalMs).toBeLessThan(3000 + MARGIN_MS);
      expect(daemon.matching(/TDC: SIGTERM received: no new messages; \d+ journal copies queued, draining for up to 3s \(drain_time\)/)).toHaveLength(1);

      const ids = qids.map((q) => `${q}.1`);
      const got = outcomes(daemon, ids);
      const delivered = ids.filter((id) => got.get(id) === 'delivered');
      const dropped = ids.filter((id) => got.get(id)?.startsWith('dropped'));
      // Every copy has a final line; some made it, the rest were dropped at the drain deadline.
      expect([...got.entries()].filter(([, v]) => v === undefined)).toEqual([]);
      expect(delivered.length).toBeGreaterThanOrEqual(1);
      expect(dropped.length).toBeGreaterThanOrEqual(1);
      for (const id of dropped) expect(got.get(id)).toBe('dropped: shutting down');
      // What the intake accepted includes every copy we logged as delivered.
      const atIntake = new Set(intake.received.map((r) => /Subject: (DRAIN\d)/.exec(r.raw.toString('latin1'))?.[1]));
      for (const id of delivered) expect(atIntake.has(id.split('.')[0])).toBe(true);
      const summary = daemon.matching(/TDC: drain finished after [\d.]+s: (\d+) delivered, 0 hard bounced, (\d+) dropped, 0 left in the queue/);
      expect(summary).toHaveLength(1);
      const [, d, x] = /(\d+) delivered, 0 hard bounced, (\d+) dropped/.exec(summary[0]!)!;
      expect(Number(d) + Number(x)).toBeLessThanOrEqual(ids.length);
      expect(Number(x)).toBe(dropped.length);
      expect(daemon.matching(/TDC: stopped$/)).toHaveLength(1);
    } finally {
      daemon.kill();
      // The intake still holds the copy that was cut off; let its timer run out before closing.
      await until(() => intake.received.length >= intake.transactions, 1500).catch(() => undefined);
      await intake.close();
    }
  }, 30_000);

  it('dead intake (accepts TCP, never speaks): every copy dropped at drain_time; exit 0 within it', async () => {
    const silent = await SilentServer.start();
    const port = await freePort();
    const daemon = await DaemonProcess.start(writeConfig(configText(port, silent.port, '2s')));
    try {
      const qids = ['DEAD1', 'DEAD2', 'DEAD3'];
      await feed(port, qids);
      await until(() => silent.connections >= 1, 10_000, 'a connection to the silent intake');
      daemon.signal('SIGTERM');
      const exit = await daemon.exited;
      expect(exit.code).toBe(0);
      expect(exit.afterSignalMs).toBeLessThan(2000 + MARGIN_MS);
      expect(exit.afterSignalMs).toBeGreaterThanOrEqual(1900); // it did wait for the intake
      const got = outcomes(daemon, qids.map((q) => `${q}.1`));
      expect([...got.values()]).toEqual(['dropped: shutting down', 'dropped: shutting down', 'dropped: shutting down']);
      expect(daemon.matching(/TDC: drain finished after [\d.]+s: 0 delivered, 0 hard bounced, 3 dropped, 0 left in the queue/)).toHaveLength(1);
    } finally {
      daemon.kill();
      await silent.close();
    }
  }, 30_000);

  it('a drain that empties the queue early exits early: every copy delivered, nothing dropped', async () => {
    const intake = await ScriptedIntake.start({ holdMs: 200 });
    const port = await freePort();
    const daemon = await DaemonProcess.start(writeConfig(configText(port, intake.port, '20s')));
    try {
      const qids = ['EARLY1', 'EARLY2', 'EARLY3'];
      await feed(port, qids);
      daemon.signal('SIGTERM');
      const exit = await daemon.exited;
      expect(exit.code).toBe(0);
      expect(exit.afterSignalMs).toBeLessThan(5000);
      const got = outcomes(daemon, qids.map((q) => `${q}.1`));
      expect([...got.values()]).toEqual(['delivered', 'delivered', 'delivered']);
      expect(intake.received).toHaveLength(3);
      expect(daemon.matching(/draining for up to 20s \(drain_time\)/)).toHaveLength(1);
      expect(daemon.matching(/TDC: drain finished after [\d.]+s: 3 delivered, 0 hard bounced, 0 dropped, 0 left in the queue/)).toHaveLength(1);
    } finally {
      daemon.kill();
      await intake.close();
    }
  }, 30_000);
  it('uses the drain_time in effect: a SIGHUP that shortens it is honoured by the next SIGTERM', async () => {
    const silent = await SilentServer.start();
    const port = await freePort();
    const conf = writeConfig(configText(port, silent.port, '20s'));
    const daemon = await DaemonProcess.start(conf);
    try {
      fs.writeFileSync(conf, configText(port, silent.port, '1s'));
      const reloaded = daemon.waitForLine(/TDC: configuration reloaded/, 10_000);
      daemon.signal('SIGHUP');
      await reloaded;
      await feed(port, ['HUP1']);
      await until(() => silent.connections >= 1, 10_000, 'a connection to the silent intake');
      daemon.signal('SIGTERM');
      const exit = await daemon.exited;
      expect(exit.code).toBe(0);
      expect(exit.afterSignalMs).toBeLessThan(1000 + MARGIN_MS);
      expect(daemon.matching(/draining for up to 1s \(drain_time\)/)).toHaveLength(1);
      expect([...outcomes(daemon, ['HUP1.1']).values()]).toEqual(['dropped: shutting down']);
    } finally {
      daemon.kill();
      await silent.close();
    }
  }, 30_000);
});
