/**
 * Small helpers for the forwarder integration specs: journal-like copies, options with short
 * timers for loopback, and polling waits (real time; every wait is bounded).
 */
import type { CopyEvent, ForwarderEvent, ForwarderOptions, JournalCopy, Forwarder } from '../../lib/forwarder';
import { TEST_CA } from './scripted-intake';

let seq = 0;

/** A small CRLF message standing in for a journal copy. */
export function testCopy(intakeAddress = 'journal@intake.test', bodyBytes = 200): JournalCopy & { raw: Buffer } {
  seq += 1;
  const id = `ITEST${process.pid}x${seq}`;
  const raw = Buffer.from(
    `From: journal@gw.example.test\r\nTo: ${intakeAddress}\r\nSubject: journal ${id}\r\nMessage-ID: <j.${id}@gw.example.test>\r\n\r\n` +
    `${'x'.repeat(Math.max(0, bodyBytes - 2))}\r\n`, 'latin1');
  return { id: `${id}.1`, queueId: id, messageId: `<orig.${id}@example.test>`, intakeAddress, raw };
}

/** Options for loopback tests: short retry, age and timeouts; trusts the test CA. */
export function loopbackOptions(overrides: Partial<ForwarderOptions> = {}): ForwarderOptions {
  return {
    tlsCa: [TEST_CA],
    maxQueueAge: 10_000,
    retryDelay: 150,
    queueMaxMessages: 1000,
    queueMaxBytes: 50 * 1024 * 1024,
    minConnections: 3,
    maxConnections: 10,
    messagesPerConnection: 10,
    connectTimeout: 500,
    commandTimeout: 1500,
    heloName: 'gw.example.test',
    ...overrides,
  };
}

export async function until(pred: () => boolean, ms: number, what = 'condition'): Promise<void> {
  const end = Date.now() + ms;
  while (!pred()) {
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** Wait until every offered copy has left the queue. */
export function settled(fwd: Forwarder, ms = 10_000): Promise<void> {
  return until(() => fwd.counters().activeRecipients === 0, ms, 'the queue to empty');
}

/** The copy events of a stream (not the agent's connection and DNS events). */
export function copyEvents(events: readonly ForwarderEvent[]): CopyEvent[] {
  return events.filter((e): e is CopyEvent => 'copy' in e && e.type !== 'dns_error');
}

/** The final event type of the first copy: delivered, hard_bounce or dropped. */
export function finalType(events: readonly ForwarderEvent[]): string | undefined {
  return copyEvents(events).find((e) => e.type === 'delivered' || e.type === 'hard_bounce' || e.type === 'dropped')?.type;
}
