/**
 * The real milter socket server under garbage: many connections in parallel send fast-check generated
 * byte streams (random packets, hostile strings, raw noise, huge declared lengths, a half packet held
 * open) while one well-formed MTA session sends its messages. The good session gets every message
 * captured exactly and every reply; the server keeps serving afterwards and no session is left open.
 */
import * as net from 'node:net';
import fc from 'fast-check';
import { startMilterServer, type MilterServer } from '../../lib/milter';
import { originalMessage, type CapturedMessage } from '../../lib/message';
import { MemoryLogger } from '../../lib/util/logger';
import { MilterClient } from '../support/milter-client';
import { anyPacket, bytes, transaction } from '../support/milter-fuzz';
import { until } from '../support/forwarder-harness';

jest.setTimeout(30_000);

const CAP = 64 * 1024;

/** Writes `chunks` on a raw connection, then waits (bounded) for the server to close or us to give up. */
function garbageConnection(port: number, chunks: Buffer[], holdMs: number): Promise<void> {
  return new Promise((resolve) => {
    const s = net.connect({ port, host: '127.0.0.1' });
    const done = (): void => {
      clearTimeout(timer);
      s.destroy();
      resolve();
    };
    const timer = setTimeout(done, holdMs);
    s.on('error', done);
    s.on('close', done);
    s.on('data', () => { /* replies are ignored */ });
    s.on('connect', () => {
      for (const c of chunks) if (!s.destroyed) s.write(c);
    });
  });
}

function u32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n >>> 0, 0);
  return b;
}

describe('milter server: garbage connections alongside a well-formed session', () => {
  let server: MilterServer;
  const logger = new MemoryLogger();
  const captured: CapturedMessage[] = [];

  beforeAll(async () => {
    server = await startMilterServer({ listen: 'inet:127.0.0.1:0', logger, maxPacketBytes: CAP, onMessage: (m) => captured.push(m) });
  });
  afterAll(async () => {
    await server?.close(100);
  });

  it('serves every message of the good session exactly while 80 hostile connections come and go', async () => {
    const port = server.port!;
    const streams = fc.sample(
      fc.array(fc.oneof({ weight: 4, arbitrary: anyPacket }, { weight: 1, arbitrary: transaction }, { weight: 1, arbitrary: bytes(3000) }), { maxLength: 30 }),
      { numRuns: 70, seed: 20261123 },
    ).map((packets) => Buffer.concat(packets));
    // Special shapes: declared lengths far over the cap, and a packet started and never finished.
    const hostile: Buffer[][] = [
      ...streams.map((s) => [s]),
      ...Array.from({ length: 5 }, (_, i) => Array.from({ length: 20 }, () => Buffer.concat([u32(0x7fffffff - i), Buffer.from('B'), Buffer.alloc(1000)]))),
      ...Array.from({ length: 5 }, () => [Buffer.concat([u32(CAP), Buffer.from('B'), Buffer.alloc(CAP - 10)])]),
    ];

    const good = (async () => {
      const c = await MilterClient.connect({ port });
      await c.negotiate();
      c.macro('C', { j: 'mx.test', '{daemon_name}': 'smtpd' });
      await c.connectInfo('client.test', '4', 2525, '192.0.2.9');
      await c.helo('client.test');
      for (let i = 0; i < 30; i++) {
        c.macro('M', { i: `GOOD${i}` });
        await c.mail('<a@partner.test>');
        await c.rcpt('<b@example.test>');
        await c.header('Subject', ` good ${i}`);
        await c.eoh();
        await c.body(`body ${i}\r\n`);
        expect((await c.eob()).map((r) => r.char)).toEqual(['c']);
      }
      c.quit();
      await c.waitClosed();
      expect(c.unexpected).toEqual([]);
    })();

    // Ten hostile connections at a time, for the whole life of the good session.
    const queue = [...hostile];
    const workers = Array.from({ length: 10 }, async () => {
      for (let next = queue.shift(); next !== undefined; next = queue.shift()) await garbageConnection(port, next, 300);
    });
    await Promise.all([good, ...workers]);

    const mine = captured.filter((m) => m.queueId.startsWith('GOOD'));
    expect(mine.map((m) => m.queueId)).toEqual(Array.from({ length: 30 }, (_, i) => `GOOD${i}`));
    mine.forEach((m, i) => expect(originalMessage(m).toString('latin1')).toBe(`Subject: good ${i}\r\n\r\nbody ${i}\r\n`));
    expect(server.stats().protocolErrors).toBeGreaterThan(10);
    expect(logger.matching(/exceeds the limit of 65536 bytes/).length).toBeGreaterThanOrEqual(5);
    await until(() => server.stats().activeSessions === 0, 5000, 'every session to end');
    expect(server.stats().connectionsTotal).toBe(hostile.length + 1);
    for (const l of logger.lines) expect(l.message).not.toMatch(/[\r\n\0]/);

    // Still serving.
    const again = await MilterClient.connect({ port });
    await again.negotiate();
    again.macro('M', { i: 'AFTER' });
    await again.mail('<a@partner.test>');
    await again.rcpt('<b@example.test>');
    expect((await again.eob()).map((r) => r.char)).toEqual(['c']);
    again.quit();
    await again.waitClosed();
    expect(captured.some((m) => m.queueId === 'AFTER')).toBe(true);
  });
});
