import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawn } from 'node:child_process';
import { startMilterServer, type MilterServer, type MilterServerOptions } from '../../../lib/milter/server';
import { MilterListenError } from '../../../lib/milter/errors';
import { CONTENT_FREE_WANTS, JOURNAL_WANTS, codes } from '../../../lib/milter';
import { MemoryLogger } from '../../../lib/util/logger';
import { ManualClock } from '../../../lib/util/clock';
import { originalMessage } from '../../../lib/message';
import type { MilterMessage } from '../../../lib/milter';
import { MilterClient, POSTFIX_OFFER, POSTFIX_V2_OFFER, SENDMAIL_OFFER, bodyChunks } from '../../support/milter-client';
import { pkt, traceBody } from '../../fixtures/milter/postfix-trace';

const servers: MilterServer[] = [];
const clients: MilterClient[] = [];
const tmpDirs: string[] = [];

afterEach(async () => {
  for (const c of clients.splice(0)) c.destroy();
  await Promise.all(servers.splice(0).map((s) => s.close(0)));
  for (const d of tmpDirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

async function start(opts: Partial<MilterServerOptions> = {}) {
  const logger = new MemoryLogger();
  const messages: MilterMessage[] = [];
  const server = await startMilterServer({ listen: 'inet:127.0.0.1:0', logger, onMessage: (m) => messages.push(m), ...opts });
  servers.push(server);
  return { server, logger, messages };
}

async function client(server: MilterServer | { path: string }, host = '127.0.0.1'): Promise<MilterClient> {
  const target = 'path' in server ? server : { port: server.port!, host };
  const c = await MilterClient.connect(target, { replyTimeoutMs: 3000 });
  clients.push(c);
  return c;
}

function tmpDir(): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'tdc-milter-'));
  tmpDirs.push(d);
  return d;
}

const BODY = traceBody(65535 + 43984);

/** Postfix 3.7.11's packets for the trace's first message, with the flags we negotiate. */
async function postfixMessage(c: MilterClient, withConnect: boolean): Promise<string> {
  c.batch(() => {
    if (withConnect) {
      c.macro('C', { j: 'mta.test.local', '{daemon_name}': 'mta.test.local', '{client_addr}': '127.0.0.1', '{client_port}': '54444' });
      void c.connectInfo('localhost', '4', 54444, '127.0.0.1');
      c.macro('H');
      void c.helo('client.example');
    }
    c.macro('M');
    void c.mail('<alice@example.org>', 'SIZE=120000', 'BODY=8BITMIME');
    c.macro('R');
    void c.rcpt('<bob@test.local>', 'NOTIFY=NEVER');
    c.macro('R', { i: '5160F20C193' });
    void c.rcpt('<carol@test.local>');
  });
  c.batch(() => {
    for (const [name, value] of [['Received', ' from fake.example by upstream'], ['To', '  bob@test.local'], ['Subject', 'no-space'],
      ['X-Folded', ' first part\n\tsecond part\n  third part'], ['X-Empty', '']]) {
      c.macro('L', { i: '5160F20C193' });
      void c.header(name!, value!);
    }
    c.macro('N', { i: '5160F20C193' });
    void c.eoh();
    for (const chunk of bodyChunks(BODY)) {
      c.macro('B', { i: '5160F20C193', '{client_addr}': '127.0.0.1' });
      void c.body(chunk);
    }
    c.macro('E', { i: '5160F20C193', '{client_addr}': '127.0.0.1' });
  });
  const replies = await c.eob();
  c.abort();
  return replies.map((r) => r.char).join('');
}

describe('milter server: Postfix-shaped session', () => {
  it('two messages, RSET, UNKNOWN, ABORT ABORT QUIT: captured exactly, one reply per OPTNEG and end of body', async () => {
    const { server, messages, logger } = await start();
    expect(server.listenAddress).toBe(`inet:127.0.0.1:${server.port}`);
    const c = await client(server);
    const n = await c.negotiate(POSTFIX_OFFER);
    expect(n.raw.subarray(0, 17).toString('hex')).toBe('0000' + (n.raw.length - 4).toString(16).padStart(4, '0') + '4f' + '00000006' + '00000100' + '001ff380');
    expect(n.macroLists.get(0)).toBe('j {daemon_name} {daemon_addr} {daemon_port} {client_addr} {client_port} {client_name} _');
    expect(c.violations).toEqual([]);

    expect(await postfixMessage(c, true)).toBe('c');
    // Null sender, RSET, unknown command.
    c.batch(() => {
      c.macro('M', { '{mail_addr}': '' });
      void c.mail('<>');
      void c.rcpt('<dave@test.local>');
      c.abort();
      c.macro('U');
      void c.unknown('XFOO');
    });
    expect(await postfixMessage(c, false)).toBe('c');
    c.abort();
    c.quit();
    await c.waitClosed();

    expect(c.replies.map((r) => r.char).join('')).toBe('Occ');
    expect(c.unexpected).toEqual([]);
    expect(messages).toHaveLength(2);
    const m = messages[0]!;
    expect(m.queueId).toBe('5160F20C193');
    expect(m.client).toEqual({ hostname: 'localhost', family: 'inet', port: 54444, address: '127.0.0.1' });
    expect(m.helo).toBe('client.example');
    expect(m.sender).toEqual({ address: 'alice@example.org', args: ['SIZE=120000', 'BODY=8BITMIME'] });
    expect(m.recipients.map((r) => r.address)).toEqual(['bob@test.local', 'carol@test.local']);
    expect(m.headers.map((h) => h.name)).toEqual(['Received', 'To', 'Subject', 'X-Folded', 'X-Empty']);
    expect(m.macros.get('client_port')).toBe('54444');
    expect(Buffer.concat(m.body).equals(BODY)).toBe(true);
    const expected = Buffer.concat([
      Buffer.from('Received: from fake.example by upstream\r\nTo:  bob@test.local\r\nSubject:no-space\r\n' +
        'X-Folded: first part\r\n\tsecond part\r\n  third part\r\nX-Empty:\r\n\r\n', 'latin1'),
      BODY,
    ]);
    expect(originalMessage(m).equals(expected)).toBe(true);
    expect(messages[1]!.recipients.map((r) => r.address)).toEqual(['bob@test.local', 'carol@test.local']);
    expect(messages[1]!.client).toEqual(m.client);
    expect(server.stats()).toEqual({ connectionsTotal: 1, activeSessions: 0, messagesTotal: 2, protocolErrors: 0 });
    expect(logger.lines.filter((l) => l.level === 'warning' || l.level === 'error')).toEqual([]);
  });

  it('a protocol-2 MTA gets a reply to every stage', async () => {
    const { server, messages } = await start();
    const c = await client(server);
    const n = await c.negotiate(POSTFIX_V2_OFFER);
    expect([n.version, n.actions, n.protocol, n.macroLists.size]).toEqual([2, 0, 0, 0]);
    const got: Array<string | undefined> = [];
    const push = async (p: Promise<{ char: string } | undefined>): Promise<void> => { got.push((await p)?.char); };
    c.macro('C', { j: 'mx' });
    await push(c.connectInfo('[192.0.2.7]', '4', 2525, '192.0.2.7'));
    await push(c.helo('client'));
    await push(c.mail('<a@example.org>'));
    await push(c.rcpt('<b@example.net>'));
    await push(c.header('Subject', 'v2'));
    await push(c.eoh());
    await push(c.body('hello\r\n'));
    c.macro('E', { i: 'ABC' });
    got.push(...(await c.eob()).map((r) => r.char));
    c.abort();
    c.quit();
    await c.waitClosed();
    expect(got).toEqual(['c', 'c', 'c', 'c', 'c', 'c', 'c', 'c']);
    expect(c.unexpected).toEqual([]);
    expect(originalMessage(messages[0]!).toString()).toBe('Subject: v2\r\n\r\nhello\r\n');
    expect(messages[0]!.client!.address).toBe('192.0.2.7');
  });

  it('a Sendmail-shaped session over IPv6 loopback (separate writes, no ABORT after an accepted message)', async () => {
    const { server, messages } = await start({ listen: 'inet6:[::1]:0' });
    expect(server.listenAddress).toBe(`inet6:[::1]:${server.port}`);
    const c = await client(server, '::1');
    await c.negotiate(SENDMAIL_OFFER);
    c.macro('C', { j: 'mx.harness.test', _: 'localhost [IPv6:::1]', '{daemon_name}': 'MTA-harness' });
    await c.connectInfo('localhost', '6', 40000, 'IPv6:::1');
    c.macro('H');
    await c.helo('client.test');
    for (const qid of ['6ANJ2de3027287', '6ANJ2de4027287']) {
      c.macro('M', { i: qid, '{mail_addr}': 'sender@client.test.' });
      await c.mail('<sender@client.test>');
      c.macro('R', { '{rcpt_addr}': 'bob' });
      await c.rcpt('<bob@example.test>');
      await c.header('Subject', ` ${qid}`);
      await c.eoh();
      await c.body('Hello.\r\n');
      c.macro('E', { '{msg_id}': `<${qid}@client.test>` });
      expect((await c.eob()).map((r) => r.char)).toEqual(['c']);
    }
    c.quit();
    await c.waitClosed();
    expect(messages.map((m) => [m.queueId, m.client!.address, m.macros.get('msg_id'), m.macros.get('daemon_name')])).toEqual([
      ['6ANJ2de3027287', '::1', '<6ANJ2de3027287@client.test>', 'MTA-harness'],
      ['6ANJ2de4027287', '::1', '<6ANJ2de4027287@client.test>', 'MTA-harness'],
    ]);
  });

  it('applies maxMessageBytes and survives a throwing handler', async () => {
    let calls = 0;
    const { server, logger } = await start({
      maxMessageBytes: 100_000,
      onMessage: (m) => {
        calls++;
        // Body frames may arrive in pieces: what is kept is a prefix within the cap.
        expect([Buffer.concat(m.body).length <= 100_000, m.bodyBytes, m.oversized]).toEqual([true, 3 * 65535, true]);
        throw new Error('handler bug');
      },
    });
    const c = await client(server);
    await c.negotiate();
    void c.mail('<a@b>');
    void c.rcpt('<c@d>');
    for (const chunk of bodyChunks(Buffer.alloc(3 * 65535, 0x61))) void c.body(chunk);
    expect((await c.eob()).map((r) => r.char)).toEqual(['c']);
    expect(calls).toBe(1);
    expect(logger.matching(/^milter connection 1: end-of-message handler failed for a message without queue id: handler bug/)).toHaveLength(1);
  });

  it('writes the end-of-body reply before the handler runs: a slow handler is not the MTA\'s wait', async () => {
    const order: string[] = [];
    const replied: number[] = [];
    const { server } = await start({
      onEobReplied: (s) => { order.push('replied'); replied.push(s); },
      onMessage: () => {
        order.push('handler');
        const until = Date.now() + 60;
        while (Date.now() < until) { /* a 60 ms journal build */ }
      },
    });
    const c = await client(server);
    await c.negotiate();
    void c.mail('<a@b>');
    void c.rcpt('<c@d>');
    void c.body('x\r\n');
    expect((await c.eob()).map((r) => r.char)).toEqual(['c']);
    expect(order).toEqual(['replied', 'handler']);
    expect(replied[0]).toBeLessThan(0.05);
  });

  it('asks the wants function at each connection: content-free wants get a message without headers or body', async () => {
    let wants = CONTENT_FREE_WANTS;
    const { server, messages } = await start({ wants: () => wants });
    const off = await client(server);
    const n = await off.negotiate(POSTFIX_OFFER);
    expect(n.protocol & (codes.SMFIP_NOHDRS | codes.SMFIP_NOBODY | codes.SMFIP_NOEOH)).toBe(codes.SMFIP_NOHDRS | codes.SMFIP_NOBODY | codes.SMFIP_NOEOH);
    wants = JOURNAL_WANTS; // a reload turning journaling on: the open connection keeps its terms
    void off.mail('<a@b>');
    void off.rcpt('<c@d>');
    expect((await off.eob()).map((r) => r.char)).toEqual(['c']);
    const on = await client(server);
    const n2 = await on.negotiate(POSTFIX_OFFER);
    expect(n2.protocol & (codes.SMFIP_NOHDRS | codes.SMFIP_NOBODY)).toBe(0);
    void on.mail('<e@f>');
    void on.rcpt('<g@h>');
    void on.header('Subject', ' s');
    void on.body('x\r\n');
    expect((await on.eob()).map((r) => r.char)).toEqual(['c']);
    expect(messages.map((m) => [m.sender.address, m.withoutContent === true, m.headers.length])).toEqual([['a@b', true, 0], ['e@f', false, 1]]);
  });
});

/** Deterministic "random" bytes (a small LCG). */
function noise(n: number, seed = 12345): Buffer {
  const b = Buffer.alloc(n);
  let x = seed;
  for (let i = 0; i < n; i++) {
    x = (x * 1103515245 + 12345) >>> 0;
    b[i] = x >>> 24;
  }
  return b;
}

describe('milter server: bad input closes only the affected connection', () => {
  const cases: Array<[string, (c: MilterClient) => Promise<void>, RegExp]> = [
    ['random bytes', async (c) => c.sendBytes(noise(256)), /protocol error \(MILTER_FRAME_TOO_LARGE\)/],
    ['a zero length', async (c) => { await c.negotiate(); c.sendBytes(Buffer.from([0, 0, 0, 0])); }, /protocol error \(MILTER_FRAME_EMPTY\) in state negotiated/],
    ['a length of 2^31', async (c) => { await c.negotiate(); c.sendBytes(Buffer.from([0x80, 0, 0, 0])); }, /packet length 2147483648 exceeds the limit of 1048576 bytes/],
    ['a truncated frame, then EOF', async (c) => {
      await c.negotiate();
      c.sendBytes(pkt('M', '<a@example.org>\0').subarray(0, 9));
      c.socket.end();
    }, /EOF from the MTA inside a packet \(9 bytes of an incomplete packet\)/],
    ['an unknown command', async (c) => { await c.negotiate(); c.sendBytes(pkt('Z', 'hello\0')); }, /protocol error \(MILTER_UNKNOWN_COMMAND\) in state negotiated: unknown command 0x5a/],
    ['a command out of order', async (c) => { await c.negotiate(); c.sendBytes(pkt('B', 'body')); }, /protocol error \(MILTER_SEQUENCE\) in state negotiated: SMFIC_BODY outside a transaction/],
  ];

  it.each(cases)('%s', async (_name, misbehave, pattern) => {
    const { server, messages, logger } = await start();
    const good = await client(server);
    await good.negotiate();
    void good.connectInfo('localhost', '4', 1025, '127.0.0.1');
    void good.mail('<a@example.org>');
    void good.rcpt('<b@example.net>');

    const bad = await client(server);
    await misbehave(bad);
    await bad.waitClosed();
    const lines = logger.lines.filter((l) => l.level === 'warning').map((l) => l.message);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^milter connection 2: /);
    expect(lines[0]).toMatch(pattern);

    void good.header('Subject', ' still here');
    void good.body('ok\r\n');
    expect((await good.eob()).map((r) => r.char)).toEqual(['c']);
    good.quit();
    await good.waitClosed();
    expect(messages.map((m) => m.sender.address)).toEqual(['a@example.org']);
    expect(server.stats()).toMatchObject({ connectionsTotal: 2, activeSessions: 0, messagesTotal: 1, protocolErrors: 1 });
  });

  it('a connection reset mid-transaction is no crash and no message', async () => {
    const { server, messages, logger } = await start();
    const c = await client(server);
    await c.negotiate();
    void c.mail('<a@b>');
    c.socket.resetAndDestroy();
    await c.waitClosed();
    const c2 = await client(server);
    await c2.negotiate();
    expect(messages).toEqual([]);
    expect(logger.lines.filter((l) => l.level === 'error')).toEqual([]);
  });
});

describe('milter server: unix sockets', () => {
  it('applies socketMode and socketGroup after bind, and close() removes the socket', async () => {
    const dir = tmpDir();
    const sock = path.join(dir, 'milter.sock');
    const gid = process.getgid!();
    const groupFile = path.join(dir, 'group');
    fs.writeFileSync(groupFile, `root:x:0:\ntdc-test:x:${gid}:postfix\n`);
    const { server } = await start({ listen: `unix:${sock}`, socketMode: 0o660, socketGroup: 'tdc-test', groupFile });
    expect(server.listenAddress).toBe(`unix:${sock}`);
    expect(server.port).toBeUndefined();
    const st = fs.statSync(sock);
    expect(st.isSocket()).toBe(true);
    expect(st.mode & 0o777).toBe(0o660);
    expect(st.gid).toBe(gid);
    const c = await client({ path: sock });
    expect((await c.negotiate()).version).toBe(6);
    c.quit();
    await c.waitClosed();
    await server.close();
    expect(fs.existsSync(sock)).toBe(false);
  });

  it('accepts local: and a numeric group; mode 0o666', async () => {
    const sock = path.join(tmpDir(), 'm.sock');
    await start({ listen: `local:${sock}`, socketMode: 0o666, socketGroup: String(process.getgid!()) });
    expect(fs.statSync(sock).mode & 0o777).toBe(0o666);
  });

  it('removes a stale socket left by a killed process', async () => {
    const sock = path.join(tmpDir(), 'stale.sock');
    const child = spawn(process.execPath, ['-e', "require('net').createServer().listen(process.argv[1], () => console.log('up'))", sock], { stdio: ['ignore', 'pipe', 'inherit'] });
    await new Promise<void>((resolve) => child.stdout!.once('data', () => resolve()));
    child.kill('SIGKILL');
    await new Promise((resolve) => child.once('exit', resolve));
    expect(fs.lstatSync(sock).isSocket()).toBe(true);
    const { server } = await start({ listen: `unix:${sock}` });
    const c = await client({ path: sock });
    await c.negotiate();
    expect(server.stats().activeSessions).toBe(1);
  });

  it('refuses a path that is a regular file, or a socket another process listens on', async () => {
    const dir = tmpDir();
    const file = path.join(dir, 'file');
    fs.writeFileSync(file, 'keep me');
    await expect(start({ listen: `unix:${file}` })).rejects.toThrow(/exists and is not a socket; not removing it/);
    expect(fs.readFileSync(file, 'utf8')).toBe('keep me');
    const sock = path.join(dir, 'live.sock');
    const other = net.createServer();
    await new Promise<void>((resolve) => other.listen(sock, resolve));
    try {
      await expect(start({ listen: `unix:${sock}` })).rejects.toThrow(/another process is listening on unix:/);
    } finally {
      await new Promise((resolve) => other.close(resolve));
    }
  });

  it('refuses an unknown group name and removes the socket again', async () => {
    const dir = tmpDir();
    const sock = path.join(dir, 'g.sock');
    const groupFile = path.join(dir, 'group');
    fs.writeFileSync(groupFile, 'root:x:0:\n');
    await expect(start({ listen: `unix:${sock}`, socketGroup: 'nosuchgroup', groupFile })).rejects.toThrow(
      /socketGroup: expected a group name from .* or a numeric gid, got "nosuchgroup"/,
    );
    expect(fs.existsSync(sock)).toBe(false);
  });
});

describe('milter server: listen errors and shutdown', () => {
  it('rejects bad listen strings and options with clear errors', async () => {
    await expect(start({ listen: 'tcp:127.0.0.1:0' })).rejects.toThrow(MilterListenError);
    await expect(start({ listen: 'tcp:127.0.0.1:0' })).rejects.toThrow(/the TCP transport is called "inet"/);
    await expect(start({ socketMode: 0o10000 })).rejects.toThrow(/socketMode: expected an integer from 0 to 4095, got 4096/);
    await expect(start({ maxPacketBytes: 0 })).rejects.toThrow(/maxPacketBytes: expected an integer/);
    const { server } = await start();
    await expect(start({ listen: `inet:127.0.0.1:${server.port}` })).rejects.toThrow(/cannot listen on inet:127.0.0.1:\d+: .*EADDRINUSE/);
  });

  it('close(grace) stops accepting, waits for sessions, then destroys those still open', async () => {
    const clock = new ManualClock();
    const { server, logger } = await start({ clock });
    const idle = await client(server);
    await idle.negotiate();
    const busy = await client(server);
    await busy.negotiate();
    void busy.mail('<a@b>');

    let closed = false;
    const closing = server.close(1000).then(() => { closed = true; });
    await new Promise((resolve) => setTimeout(resolve, 20)); // let the close start (real I/O, not a timer under test)
    await expect(MilterClient.connect({ port: server.port! })).rejects.toThrow(/ECONNREFUSED/);
    expect(closed).toBe(false);

    idle.quit(); // one session ends by itself within the grace period
    await idle.waitClosed();
    expect(closed).toBe(false);
    expect(server.stats().activeSessions).toBe(1);

    clock.advance(999);
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(busy.closed).toBe(false);
    clock.advance(1);
    await busy.waitClosed();
    await closing;
    expect(closed).toBe(true);
    expect(logger.matching(/^milter: 1 session\(s\) still open 1000 ms after shutdown began; closing them$/)).toHaveLength(1);
    expect(server.stats().activeSessions).toBe(0);
    await server.close(); // idempotent
  });

  it('close() returns at once when no session is open', async () => {
    const clock = new ManualClock();
    const { server } = await start({ clock });
    await server.close(60_000);
    expect(clock.pending).toBe(0);
  });
});
