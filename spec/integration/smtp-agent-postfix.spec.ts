/**
 * The SMTP delivery agent against a real Postfix smtpd as the intake: `smtpd_tls_security_level =
 * encrypt`, TLS 1.2 or newer, the test CA's certificate, delivery to a Maildir we read back. 8-bit
 * and 5 MB copies arrive byte-exact (through Postfix's own parser, with PIPELINING and CHUNKING
 * offered), a listener without PIPELINING and 8BITMIME is handled as specified, a listener with a
 * small SIZE gets no data, and the second connection resumes the TLS session.
 */
import * as path from 'node:path';
import { SmtpAgent } from '../../lib/forwarder/smtp-agent';
import type { QueuedCopy } from '../../lib/forwarder/delivery-agent';
import type { ConnectionEvent, DnsEvent } from '../../lib/forwarder/events';
import { systemClock } from '../../lib/util/clock';
import { loopbackOptions, until } from '../support/forwarder-harness';
import { startPostfix, type PostfixInstance } from '../support/postfix';
import { relay } from '../support/config-values';

jest.setTimeout(120_000);

const TLS = path.join(__dirname, '..', 'fixtures', 'tls');

let postfix: PostfixInstance;
const agents: SmtpAgent[] = [];
let events: (ConnectionEvent | DnsEvent)[] = [];

beforeAll(async () => {
  postfix = await startPostfix({
    virtualDomains: ['intake.test'],
    myhostname: 'mx1.intake.test',
    listeners: {
      // What a plain intake without the extensions looks like to a client.
      plain: { overrides: { smtpd_discard_ehlo_keywords: 'pipelining,8bitmime,chunking' } },
      small: { overrides: { message_size_limit: '4000' } },
    },
    mainCf: [
      'smtpd_tls_security_level = encrypt',
      `smtpd_tls_cert_file = ${path.join(TLS, 'intake.crt')}`,
      `smtpd_tls_key_file = ${path.join(TLS, 'intake.key')}`,
      'smtpd_tls_protocols = >=TLSv1.2',
      'smtpd_tls_mandatory_protocols = >=TLSv1.2',
      'smtpd_tls_loglevel = 1',
    ],
  });
});

afterEach(async () => {
  for (const a of agents.splice(0)) await a.close(1000);
  events = [];
});

afterAll(async () => {
  await postfix?.stop();
});

function agentOn(port: number, over: Parameters<typeof loopbackOptions>[0] = {}): SmtpAgent {
  const a = new SmtpAgent(loopbackOptions({ relay: relay(`[127.0.0.1]:${port}`), tlsServername: 'mx1.intake.test', commandTimeout: 10_000, ...over }), {
    clock: systemClock,
    onEvent: (e) => events.push(e),
  });
  agents.push(a);
  return a;
}

let mid = 0;
function copy(raw: Buffer | Buffer[]): QueuedCopy {
  mid += 1;
  return { id: `PF${mid}.1`, queueId: `PF${mid}`, messageId: `<pf${mid}@example.test>`, intakeAddress: 'journal@intake.test', raw, mid };
}

/** A complete message (Date and Message-ID present, so Postfix adds nothing but its Received line). */
function message(tag: string, body: string | Buffer): Buffer {
  const head = `From: gw@example.test\r\nTo: journal@intake.test\r\nDate: Mon, 30 Nov 2026 12:00:00 +0000\r\nMessage-ID: <${tag}@example.test>\r\nSubject: ${tag}\r\n\r\n`;
  return Buffer.concat([Buffer.from(head, 'latin1'), Buffer.isBuffer(body) ? body : Buffer.from(body, 'latin1')]);
}

const ctx = (): { attempt: number; signal: AbortSignal } => ({ attempt: 1, signal: new AbortController().signal });

function deliveredMessage(tag: string): Buffer | undefined {
  return postfix.delivered().find((d) => d.message.includes(`Message-ID: <${tag}@example.test>`))?.message;
}

describe('SmtpAgent against a real Postfix smtpd (TLS required)', () => {
  it('delivers an 8-bit copy and a 5 MB copy byte-exact over TLS ≥ 1.2, and resumes the TLS session', async () => {
    const agent = agentOn(postfix.smtpPort, { messagesPerConnection: 1 });
    const eight = message('eight', Buffer.from('Gr\u00fc\u00dfe aus K\u00f6ln\r\n.leading dot\r\n\u00ff\u00fe\r\n', 'latin1'));
    const line = `${'0123456789'.repeat(7)}\r\n..${'q'.repeat(30)}\r\n`;
    const big = message('big', line.repeat(Math.ceil((5 * 1024 * 1024) / line.length)));
    const r1 = await agent.deliver(copy(eight), ctx());
    expect(r1).toMatchObject({ outcome: 'delivered', dsn: '2.0.0' });
    expect(r1.reply).toMatch(/^250 2\.0\.0 Ok: queued as /);
    const r2 = await agent.deliver(copy([big.subarray(0, 70_000), big.subarray(70_000)]), ctx());
    expect(r2).toMatchObject({ outcome: 'delivered' });
    await until(() => deliveredMessage('eight') !== undefined && deliveredMessage('big') !== undefined, 60_000, 'both copies in the Maildir');
    expect(deliveredMessage('eight')?.equals(eight)).toBe(true);
    const got = deliveredMessage('big');
    expect(got?.length).toBe(big.length);
    expect(got?.equals(big)).toBe(true);
    const tls = events.filter((e): e is Extract<ConnectionEvent, { type: 'tls_established' }> => e.type === 'tls_established');
    expect(tls).toHaveLength(2);
    expect(tls[0]!.protocol).toMatch(/^TLSv1\.[23]$/);
    expect(tls.map((t) => t.resumed)).toEqual([false, true]);
    expect(postfix.maillog()).toMatch(/Trusted TLS connection established|TLS connection established|Anonymous TLS connection established/);
  });

  it('sends to a listener without PIPELINING and 8BITMIME one command at a time; an 8-bit copy is a hard bounce, never sent', async () => {
    const agent = agentOn(postfix.ports.plain!);
    const plain = message('plain', 'seven bit only\r\n');
    expect(await agent.deliver(copy(plain), ctx())).toMatchObject({ outcome: 'delivered' });
    const r = await agent.deliver(copy(message('eight-refused', Buffer.from('caf\u00e9\r\n', 'latin1'))), ctx());
    expect(r).toMatchObject({ outcome: 'hard', kind: 'no_8bitmime', phase: 'mail' });
    await until(() => deliveredMessage('plain') !== undefined, 20_000, 'the plain copy in the Maildir');
    expect(deliveredMessage('plain')?.equals(plain)).toBe(true);
    expect(deliveredMessage('eight-refused')).toBeUndefined();
    expect(postfix.maillog()).not.toMatch(/eight-refused/);
    // Postfix says it hid the keywords, and never saw us pipeline against its wishes.
    expect(postfix.maillog()).toMatch(/postfix\/plain\/smtpd\[\d+\]: discarding EHLO keywords: 8BITMIME PIPELINING CHUNKING/);
    expect(postfix.maillog()).not.toMatch(/improper command pipelining/);
  });

  it('sends a binary copy (a 3000-byte line) as 8BITMIME over DATA: Postfix offers CHUNKING but not BINARYMIME', async () => {
    const agent = agentOn(postfix.smtpPort);
    const raw = message('binary', `${'b'.repeat(3000)}\r\nshort\r\n`);
    expect(await agent.deliver({ ...copy(raw), body: 'binary' }, ctx())).toMatchObject({ outcome: 'delivered' });
    await until(() => deliveredMessage('binary') !== undefined, 20_000, 'the binary copy in the Maildir');
    expect(deliveredMessage('binary')?.equals(raw)).toBe(true);
  });

  it('a copy over the listener\'s SIZE is a hard 5.3.4 before any data', async () => {
    const agent = agentOn(postfix.ports.small!);
    const r = await agent.deliver(copy(message('too-big', 'x'.repeat(60) + '\r\n'.repeat(1) + 'y'.repeat(8000) + '\r\n')), ctx());
    expect(r).toMatchObject({ outcome: 'hard', kind: 'size', dsn: '5.3.4', phase: 'mail' });
    // Nothing of it reached Postfix: no transaction was started.
    expect(postfix.maillog()).not.toMatch(/message size \d+ exceeds size limit/);
  });

  it('a recipient Postfix does not take is a hard 5xx at RCPT, with Postfix\'s own reply', async () => {
    const agent = agentOn(postfix.smtpPort);
    const c = { ...copy(message('nobody', 'x\r\n')), intakeAddress: 'journal@elsewhere.test' };
    const r = await agent.deliver(c, ctx());
    expect(r).toMatchObject({ outcome: 'hard', kind: 'smtp_5xx', phase: 'rcpt' });
    expect(r.reply).toMatch(/^5\d\d 5\.\d\.\d+ /);
  });
});
