/**
 * Connection behaviour under load, counted at the intake: a burst of 500 copies against an intake
 * that holds every message briefly opens at least minConnections connections, never more than
 * maxConnections, carries at most messagesPerConnection per connection, sends everything over
 * TLS >= 1.2, and leaves nothing open a few seconds after the queue drained.
 */
import { Forwarder } from '../../lib/forwarder';
import { IDLE_CLOSE_MS } from '../../lib/forwarder/intake-pool';
import { MemoryLogger } from '../../lib/util/logger';
import { ScriptedIntake } from '../support/scripted-intake';
import { loopbackOptions, settled, testCopy, until } from '../support/forwarder-harness';
import { relay } from '../support/config-values';

let intake: ScriptedIntake | undefined;
let fwd: Forwarder | undefined;

afterEach(async () => {
  await fwd?.close();
  await intake?.close();
  fwd = undefined;
  intake = undefined;
});

describe('connections under load', () => {
  it('500 copies: between minConnections and maxConnections open, all over TLS >= 1.2, all closed after the drain', async () => {
    intake = await ScriptedIntake.start({ holdMs: 5 });
    const logger = new MemoryLogger();
    const dcids = new Set<number>();
    fwd = new Forwarder(loopbackOptions({
      relay: relay(`[127.0.0.1]:${intake.port}`), minConnections: 3, maxConnections: 8, messagesPerConnection: 10,
      // Generous deadlines: this spec is about connection counts, and a loaded CI box must not turn
      // slow deliveries into drops.
      maxQueueAge: 60_000, connectTimeout: 5_000, commandTimeout: 15_000,
    }), { logger, onEvent: (e) => { if (e.type === 'delivery_start') dcids.add(e.dcid); } });
    const f = fwd;
    let clientPeak = 0;
    const sampler = setInterval(() => { clientPeak = Math.max(clientPeak, f.counters().connectionsOut); }, 5);
    try {
      for (let i = 0; i < 500; i += 1) expect(f.offer(testCopy('journal@intake.test', 2000))).toBe(true);
      await settled(f, 90_000);
    } finally {
      clearInterval(sampler);
    }
    expect(f.counters()).toMatchObject({ enqueued: 500, delivered: 500, softBounced: 0, hardBounced: 0, dropped: 0, activeRecipients: 0, queuedBytes: 0 });
    expect(intake.received).toHaveLength(500);
    for (const m of intake.received) {
      expect(m.secure).toBe(true);
      expect(['TLSv1.2', 'TLSv1.3']).toContain(m.tlsProtocol);
      expect(m.mailFrom).toBe('');
    }
    expect(intake.connectionsPeak).toBeGreaterThanOrEqual(3);
    expect(intake.connectionsPeak).toBeLessThanOrEqual(8);
    expect(clientPeak).toBeLessThanOrEqual(8);
    expect(intake.connectionsTotal).toBeGreaterThanOrEqual(50); // at most 10 copies per connection
    // Connections open for the queue's demand (the gateway's rule), so a few opened as the last copies
    // went out may close without carrying one; never more than the cap's worth.
    expect(dcids.size).toBeLessThanOrEqual(intake.connectionsTotal);
    expect(intake.connectionsTotal - dcids.size).toBeLessThanOrEqual(8);
    await intake.waitIdle(IDLE_CLOSE_MS + 2500);
    await until(() => f.counters().connectionsOut === 0, 1000, 'connectionsOut to reach 0');
  });

  it('a small queue still gets minConnections deliveries at once', async () => {
    intake = await ScriptedIntake.start({ holdMs: 400 });
    fwd = new Forwarder(loopbackOptions({
      relay: relay(`[127.0.0.1]:${intake.port}`), minConnections: 3, maxConnections: 8, messagesPerConnection: 10,
      // Generous deadlines: this spec is about connection counts, and a loaded CI box must not turn
      // slow deliveries into drops.
      maxQueueAge: 60_000, connectTimeout: 5_000, commandTimeout: 15_000,
    }), { logger: new MemoryLogger() });
    for (let i = 0; i < 3; i += 1) fwd.offer(testCopy());
    await until(() => intake!.connectionsPeak === 3, 3000, 'three connections');
    await settled(fwd);
    expect(intake.received).toHaveLength(3);
    expect(intake.connectionsPeak).toBe(3);
  });
});
