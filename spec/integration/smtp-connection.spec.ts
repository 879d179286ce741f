/**
 * The SMTP socket driver (lib/smtp/connection.ts) against raw loopback servers that say exactly
 * what each case needs: timeouts on the injected ManualClock (no real waiting), a garbage reply, an
 * over-long line, a close in the middle of a reply, non-TLS bytes after STARTTLS; plus the shared
 * SecureContext and the TLS session cache.
 */
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import * as tls from 'node:tls';
import { SmtpConnection, type SmtpConnectionHandlers } from '../../lib/smtp/connection';
import type { SmtpFailure } from '../../lib/smtp/client-session';
import { SecureContexts, TlsSessionCache } from '../../lib/smtp/tls-sessions';
import { ManualClock, systemClock, type Clock } from '../../lib/util/clock';
import { until } from '../support/forwarder-harness';
import { TEST_CA } from '../support/scripted-intake';

/** A server that answers each line it receives with the next scripted text (the first on connect). */
async function rawServer(script: (string | ((s: net.Socket) => void))[]): Promise<{ port: number; close(): Promise<void>; received: string[] }> {
  const received: string[] = [];
  const sockets = new Set<net.Socket>();
  const server = net.createServer((s) => {
    sockets.add(s);
    s.on('error', () => {});
    const steps = [...script];
    const next = (): void => {
      const step = steps.shift();
      if (step === undefined) return;
      if (typeof step === 'string') s.write(step);
      else step(s);
    };
    next();
    s.on('data', (d: Buffer) => {
      for (const line of d.toString('latin1').split('\r\n').filter((l) => l !== '')) {
        received.push(line);
        next();
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    received,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

const contexts = new SecureContexts();

function connect(port: number, clock: Clock, over: Partial<SmtpConnectionHandlers> = {}): { conn: SmtpConnection; closed: Promise<SmtpFailure | undefined>; connected: Promise<void> } {
  let onClosed!: (f: SmtpFailure | undefined) => void;
  let onConnected!: () => void;
  const closed = new Promise<SmtpFailure | undefined>((r) => { onClosed = r; });
  const connected = new Promise<void>((r) => { onConnected = r; });
  const conn = new SmtpConnection({
    host: 'mx1.intake.test', ip: '127.0.0.1', port, heloName: 'gw.example.test', secureContext: contexts.get([TEST_CA]),
    clock, connectTimeout: 1000, commandTimeout: 5000,
  }, { onReady: () => {}, onTransactionDone: () => {}, onClosed, onConnected: () => onConnected(), ...over });
  return { conn, closed, connected };
}

/** Still open 1 ms before the 5000 ms command timeout, closed at it: the failure it closed with. */
async function closedAtTimeout(clock: ManualClock, closed: Promise<SmtpFailure | undefined>): Promise<SmtpFailure | undefined> {
  let done = false;
  void closed.then(() => { done = true; });
  clock.advance(4999);
  await new Promise((r) => setTimeout(r, 50));
  expect(done).toBe(false);
  clock.advance(1);
  return closed;
}

const servers: { close(): Promise<void> }[] = [];
afterEach(async () => {
  for (const s of servers.splice(0)) await s.close();
});

describe('SmtpConnection', () => {
  it('times the greeting on the injected clock: nothing at 4999 ms, a greeting timeout at 5000 ms', async () => {
    const server = await rawServer([]);
    servers.push(server);
    const clock = new ManualClock();
    const { closed, connected } = connect(server.port, clock);
    await connected;
    expect(await closedAtTimeout(clock, closed)).toMatchObject({ kind: 'timeout', phase: 'greeting' });
  });

  it('times each reply: an EHLO that is never answered ends in the ehlo phase', async () => {
    const server = await rawServer(['220 mx ESMTP\r\n']);
    servers.push(server);
    const clock = new ManualClock();
    const { closed } = connect(server.port, clock);
    await until(() => server.received.length === 1, 5000, 'EHLO');
    expect(server.received).toEqual(['EHLO gw.example.test']);
    clock.advance(5000);
    expect(await closed).toMatchObject({ kind: 'timeout', phase: 'ehlo' });
  });

  it.each([
    ['a garbage reply', ['220 mx\r\n', 'hello there\r\n'], { kind: 'protocol', phase: 'ehlo' }],
    ['an over-long reply line', ['220 mx\r\n', `250 ${'x'.repeat(5000)}\r\n`], { kind: 'protocol', phase: 'ehlo' }],
    ['a close in the middle of a reply', ['220 mx\r\n', (s: net.Socket) => s.end('250-mx\r\n250-PIPE')], { kind: 'network', phase: 'ehlo', message: 'connection closed in the middle of a reply' }],
    ['plain bytes after STARTTLS', ['220 mx\r\n', '250-mx\r\n250 STARTTLS\r\n', '220 go ahead\r\n', (s: net.Socket) => s.end('this is not TLS\r\n')], { kind: 'tls', phase: 'tls' }],
  ])('%s is a typed failure', async (_name, script, failure) => {
    const server = await rawServer(script);
    servers.push(server);
    const { closed } = connect(server.port, systemClock);
    expect(await closed).toMatchObject(failure);
  });

  it('times the TLS handshake: a server that says 220 to STARTTLS and then nothing ends in the tls phase at 5000 ms', async () => {
    const server = await rawServer(['220 mx\r\n', '250-mx\r\n250 STARTTLS\r\n', '220 go ahead\r\n']);
    servers.push(server);
    const clock = new ManualClock();
    const { closed } = connect(server.port, clock);
    await until(() => server.received.includes('STARTTLS'), 5000, 'STARTTLS');
    await new Promise((r) => setTimeout(r, 50)); // the 220 reaches the client, the handshake starts
    expect(await closedAtTimeout(clock, closed)).toMatchObject({ kind: 'timeout', phase: 'tls' });
  });

  it('refuses plaintext sent after the 220 to STARTTLS (RFC 3207 injection): it never reaches the TLS session', async () => {
    // The server (or a man in the middle) appends plaintext to the 220, then speaks TLS honestly.
    const dir = path.join(__dirname, '..', 'fixtures', 'tls');
    const sockets = new Set<net.Socket>();
    const server = net.createServer((s) => {
      sockets.add(s);
      s.on('error', () => {});
      s.write('220 mx\r\n');
      let step = 0;
      const onData = (d: Buffer): void => {
        step += d.toString('latin1').split('\r\n').filter((l) => l !== '').length;
        if (step === 1) s.write('250-mx\r\n250 STARTTLS\r\n');
        if (step < 2) return;
        s.off('data', onData);
        s.write('220 go ahead\r\n250-injected by a man in the middle');
        const secure = new tls.TLSSocket(s, {
          isServer: true, key: fs.readFileSync(path.join(dir, 'intake.key')), cert: fs.readFileSync(path.join(dir, 'intake.crt')),
        });
        sockets.add(secure);
        secure.on('error', () => {});
        secure.on('data', () => secure.write('250-mx\r\n250 PIPELINING\r\n'));
      };
      s.on('data', onData);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    servers.push({
      close: async () => {
        for (const s of sockets) s.destroy();
        await new Promise<void>((resolve) => server.close(() => resolve()));
      },
    });
    let ready!: () => void;
    const becameReady = new Promise<'ready'>((r) => { ready = () => r('ready'); });
    const { closed, conn } = connect((server.address() as net.AddressInfo).port, systemClock, { onReady: () => ready() });
    const outcome = await Promise.race([becameReady, closed]);
    conn.abort('test over');
    expect(outcome).toMatchObject({ kind: 'protocol', phase: 'tls' });
  });

  it('a reply before a malformed line in the same packet still counts (the failure comes after it)', async () => {
    // Were the 220 dropped with the garbage, a 250 to a copy's data would be too: delivered, yet retried.
    const server = await rawServer(['220 mx ESMTP\r\nthis is not a reply\r\n']);
    servers.push(server);
    const { closed } = connect(server.port, systemClock);
    expect(await closed).toMatchObject({ kind: 'protocol', phase: 'ehlo' });
  });

  it('a refused connection is a network failure in the connect phase', async () => {
    const server = await rawServer([]);
    const port = server.port;
    await server.close();
    const { closed } = connect(port, systemClock);
    expect(await closed).toMatchObject({ kind: 'network', phase: 'connect', code: 'ECONNREFUSED' });
  });
});

describe('SecureContexts and TlsSessionCache', () => {
  it('builds one SecureContext per CA setting and reuses it', () => {
    const c = new SecureContexts();
    const a = c.get([TEST_CA]);
    expect(c.get([Buffer.from(TEST_CA)])).toBe(a);
    const none = c.get(undefined);
    expect(none).not.toBe(a);
    expect(c.get([])).toBe(none);
  });

  it('keeps the latest session per host, forgetting the oldest host beyond its size', () => {
    const cache = new TlsSessionCache(2);
    cache.set('a:25', Buffer.from('1'));
    cache.set('b:25', Buffer.from('2'));
    cache.set('a:25', Buffer.from('3'));
    cache.set('c:25', Buffer.from('4'));
    expect(cache.get('a:25')?.toString()).toBe('3');
    expect(cache.get('b:25')).toBeUndefined();
    expect(cache.size).toBe(2);
  });
});
