/**
 * The SMTP client session without sockets: every state and its legal replies, STARTTLS always (and
 * EHLO again with the pre-TLS capabilities forgotten), MAIL/RCPT/DATA pipelined in one write or one
 * by one, BODY=8BITMIME / SIZE= / BDAT by what is offered, every reply class at every step, 421
 * anywhere, RSET after a failed transaction, closes and timeouts in every state.
 */
import { ClientSession, parseEhlo, type SessionOutput, type SmtpTransaction } from '../../../lib/smtp/client-session';
import { SmtpProtocolError } from '../../../lib/smtp/errors';
import type { SmtpReply } from '../../../lib/smtp/reply-parser';

const r = (code: number, ...lines: string[]): SmtpReply => ({ code, lines: lines.length > 0 ? lines : ['x'] });
const ehlo = (...keywords: string[]): SmtpReply => r(250, 'mx.intake.test', ...keywords);
const text = (o: SessionOutput): string => Buffer.concat(o.write).toString('latin1');
const ALL = ['PIPELINING', 'SIZE 1000000', '8BITMIME', 'ENHANCEDSTATUSCODES'];

function txn(over: Partial<SmtpTransaction> = {}): SmtpTransaction {
  const raw = over.raw ?? Buffer.from('Subject: x\r\n\r\n.dot\r\n');
  return { recipient: 'journal@intake.test', raw, bytes: Buffer.isBuffer(raw) ? raw.length : 0, body: '7bit', ...over };
}

/** A session driven to 'ready' over TLS with `keywords` offered after TLS. */
function ready(keywords: string[] = ALL, preTls: string[] = ['STARTTLS']): ClientSession {
  const s = new ClientSession('gw.example.test');
  expect(text(s.receive(r(220, 'mx ESMTP')))).toBe('EHLO gw.example.test\r\n');
  expect(text(s.receive(ehlo(...preTls)))).toBe('STARTTLS\r\n');
  expect(s.receive(r(220, '2.0.0 Ready to start TLS')).actions).toEqual([{ type: 'start_tls' }]);
  expect(s.state).toBe('tls');
  expect(text(s.tlsUp())).toBe('EHLO gw.example.test\r\n');
  expect(s.capabilities).toBeUndefined();
  expect(s.receive(ehlo(...keywords)).actions).toEqual([{ type: 'ready' }]);
  expect(s.state).toBe('ready');
  return s;
}

describe('ClientSession: connection setup', () => {
  it('EHLO, STARTTLS (even when not advertised), EHLO again; capabilities come from the TLS EHLO only', () => {
    const s = ready(['SIZE 500', '8BITMIME'], ['PIPELINING', 'CHUNKING']);
    expect(s.capabilities).toEqual({ pipelining: false, eightBitMime: true, chunking: false, binaryMime: false, startTls: false, size: 500 });
  });

  it('waits for a reply in every state that sends a command, and in none of the others', () => {
    const s = new ClientSession('gw.example.test');
    expect([s.state, s.awaiting, s.phase]).toEqual(['greeting', 'command', 'greeting']);
    s.receive(r(220));
    expect([s.state, s.awaiting, s.phase]).toEqual(['ehlo', 'command', 'ehlo']);
    s.receive(ehlo());
    expect([s.state, s.awaiting, s.phase]).toEqual(['starttls', 'command', 'starttls']);
    s.receive(r(220));
    expect([s.state, s.awaiting, s.phase]).toEqual(['tls', 'handshake', 'tls']);
    s.tlsUp();
    expect([s.state, s.awaiting]).toEqual(['ehlo_tls', 'command']);
    s.receive(ehlo());
    expect([s.state, s.awaiting]).toEqual(['ready', undefined]);
    expect(text(s.quit())).toBe('QUIT\r\n');
    expect([s.state, s.awaiting]).toEqual(['quit', 'command']);
    expect(s.receive(r(221)).actions).toEqual([{ type: 'close' }]);
    expect(s.state).toBe('closed');
  });

  const setupSteps: [string, (s: ClientSession) => void, string][] = [
    ['greeting', () => {}, 'greeting'],
    ['EHLO', (s) => { s.receive(r(220)); }, 'ehlo'],
    ['STARTTLS', (s) => { s.receive(r(220)); s.receive(ehlo()); }, 'starttls'],
    ['EHLO over TLS', (s) => { s.receive(r(220)); s.receive(ehlo()); s.receive(r(220)); s.tlsUp(); }, 'ehlo'],
  ];
  describe.each(setupSteps)('a refusal at %s', (_name, drive, phase) => {
    it.each([[421], [450], [454], [500], [502], [554]])('%i ends the connection with that reply and the phase', (code) => {
      const s = new ClientSession('gw.example.test');
      drive(s);
      const out = s.receive(r(code, 'no'));
      expect(out.actions).toEqual([{ type: 'close', failure: { kind: 'reply', phase, reply: r(code, 'no') } }]);
      // Say goodbye unless the server already did (421).
      expect(text(out)).toBe(code === 421 ? '' : 'QUIT\r\n');
      expect(s.state).toBe('closed');
    });
  });

  it('a failed handshake ends the connection as a TLS failure', () => {
    const s = new ClientSession('gw.example.test');
    s.receive(r(220)); s.receive(ehlo()); s.receive(r(220));
    expect(s.tlsFailed('certificate has expired', 'CERT_HAS_EXPIRED').actions).toEqual([
      { type: 'close', failure: { kind: 'tls', phase: 'tls', message: 'certificate has expired', code: 'CERT_HAS_EXPIRED' } },
    ]);
  });

  it('a reply while none is due (during the handshake, or when idle) is a protocol error', () => {
    const s = new ClientSession('gw.example.test');
    s.receive(r(220)); s.receive(ehlo()); s.receive(r(220));
    const out = s.receive(r(250));
    expect(out.actions[0]).toMatchObject({ type: 'close', failure: { kind: 'protocol', phase: 'tls' } });
    const idle = ready();
    const o2 = idle.receive(r(250));
    expect(o2.actions[0]).toMatchObject({ type: 'close', failure: { kind: 'protocol' } });
    expect((o2.actions[0] as { failure: { error: unknown } }).failure.error).toBeInstanceOf(SmtpProtocolError);
  });

  it.each(['greeting', 'ehlo', 'starttls', 'tls', 'ehlo_tls'])('a close or timeout during %s fails the connection in that phase', (state) => {
    for (const end of ['close', 'timeout'] as const) {
      const s = new ClientSession('gw.example.test');
      if (state !== 'greeting') s.receive(r(220));
      if (state !== 'greeting' && state !== 'ehlo') s.receive(ehlo());
      if (state === 'tls' || state === 'ehlo_tls') s.receive(r(220));
      if (state === 'ehlo_tls') s.tlsUp();
      expect(s.state).toBe(state);
      const phase = s.phase;
      const out = end === 'close' ? s.closed() : s.timeout('no reply');
      expect(out.actions).toEqual([{ type: 'close', failure: expect.objectContaining({ kind: end === 'close' ? 'network' : 'timeout', phase }) }]);
    }
  });

  it('an idle connection the server closes affects no copy; QUIT then close is normal', () => {
    expect(ready().closed().actions).toEqual([{ type: 'close' }]);
    const s = ready();
    s.quit();
    expect(s.closed().actions).toEqual([{ type: 'close' }]);
    const t = ready();
    t.quit();
    expect(t.timeout('slow QUIT').actions).toEqual([{ type: 'close' }]);
  });

  it('refuses an EHLO name that is not a host name', () => {
    expect(() => new ClientSession('gw example')).toThrow(/EHLO name/);
  });
});

describe('ClientSession: a transaction', () => {
  it('pipelines MAIL, RCPT and DATA in one write, then sends the dot-stuffed body on 354', () => {
    const s = ready();
    const out = s.start(txn());
    expect(out.write).toHaveLength(1);
    expect(text(out)).toBe('MAIL FROM:<> SIZE=20\r\nRCPT TO:<journal@intake.test>\r\nDATA\r\n');
    expect(s.receive(r(250)).write).toEqual([]);
    expect(s.receive(r(250)).write).toEqual([]);
    const body = s.receive(r(354));
    expect(text(body)).toBe('Subject: x\r\n\r\n..dot\r\n.\r\n');
    expect(s.awaiting).toBe('message');
    const done = s.receive(r(250, '2.0.0 Ok: queued'));
    expect(done.actions).toEqual([{ type: 'transaction_done', result: { ok: true, reply: r(250, '2.0.0 Ok: queued') } }, { type: 'ready' }]);
    expect(s.state).toBe('ready');
  });

  it('without PIPELINING sends one command per reply', () => {
    const s = ready(['8BITMIME']);
    expect(text(s.start(txn()))).toBe('MAIL FROM:<>\r\n');
    expect(text(s.receive(r(250)))).toBe('RCPT TO:<journal@intake.test>\r\n');
    expect(text(s.receive(r(251)))).toBe('DATA\r\n');
    expect(text(s.receive(r(354)))).toBe('Subject: x\r\n\r\n..dot\r\n.\r\n');
    expect(s.receive(r(250)).actions[0]).toMatchObject({ type: 'transaction_done', result: { ok: true } });
  });

  it('declares BODY=8BITMIME for 8-bit and (without BINARYMIME) binary copies; SIZE only when offered', () => {
    expect(text(ready().start(txn({ body: '8bit' })))).toMatch(/^MAIL FROM:<> BODY=8BITMIME SIZE=20\r\n/);
    expect(text(ready(['PIPELINING', '8BITMIME']).start(txn({ body: 'binary' })))).toMatch(/^MAIL FROM:<> BODY=8BITMIME\r\n/);
    expect(text(ready(['PIPELINING', '8BITMIME', 'SIZE']).start(txn()))).toMatch(/^MAIL FROM:<> SIZE=20\r\n/);
  });

  it('an 8-bit or binary copy to a server without 8BITMIME fails at once, nothing written, still ready', () => {
    for (const body of ['8bit', 'binary'] as const) {
      const s = ready(['PIPELINING', 'SIZE 1000']);
      const out = s.start(txn({ body }));
      expect(out.write).toEqual([]);
      expect(out.actions).toEqual([
        { type: 'transaction_done', result: { ok: false, failure: { kind: 'no_8bitmime', phase: 'mail', body } } },
        { type: 'ready' },
      ]);
      expect(s.state).toBe('ready');
    }
  });

  it('a copy over the server\'s SIZE fails at once, nothing written; SIZE without a number means no limit', () => {
    const s = ready(['PIPELINING', 'SIZE 10']);
    const out = s.start(txn());
    expect(out.write).toEqual([]);
    expect(out.actions[0]).toEqual({ type: 'transaction_done', result: { ok: false, failure: { kind: 'size', phase: 'mail', limit: 10, bytes: 20 } } });
    expect(text(ready(['PIPELINING', 'SIZE']).start(txn()))).toContain('SIZE=20');
  });

  it('a binary copy goes with BODY=BINARYMIME and BDAT … LAST (no stuffing) where CHUNKING and BINARYMIME are offered', () => {
    const raw = Buffer.from('Subject: b\r\n\r\n.raw\rbytes');
    for (const pipelining of [true, false]) {
      const s = ready([...(pipelining ? ['PIPELINING'] : []), 'CHUNKING', 'BINARYMIME', '8BITMIME', 'SIZE 100000']);
      const first = text(s.start(txn({ raw, bytes: raw.length, body: 'binary' })));
      if (pipelining) {
        expect(first).toBe(`MAIL FROM:<> BODY=BINARYMIME SIZE=${raw.length}\r\nRCPT TO:<journal@intake.test>\r\n`);
        expect(s.receive(r(250)).write).toEqual([]);
      } else {
        expect(first).toBe(`MAIL FROM:<> BODY=BINARYMIME SIZE=${raw.length}\r\n`);
        expect(text(s.receive(r(250)))).toBe('RCPT TO:<journal@intake.test>\r\n');
      }
      const data = s.receive(r(250));
      expect(data.write.map((w) => w.toString('latin1'))).toEqual([`BDAT ${raw.length} LAST\r\n`, raw.toString('latin1')]);
      expect(s.awaiting).toBe('message');
      expect(s.receive(r(250)).actions[0]).toMatchObject({ result: { ok: true } });
    }
  });

  it('a body in pieces is stuffed across piece boundaries', () => {
    const s = ready();
    const raw = [Buffer.from('a\r'), Buffer.from('\n.b'), Buffer.from('\r\n')];
    s.start(txn({ raw, bytes: 7 }));
    s.receive(r(250)); s.receive(r(250));
    expect(text(s.receive(r(354)))).toBe('a\r\n..b\r\n.\r\n');
  });

  type Step = 'mail' | 'rcpt' | 'data' | 'message';
  const steps: Step[] = ['mail', 'rcpt', 'data', 'message'];
  const codes = [421, 450, 451, 452, 503, 550, 552, 554];
  describe.each([[true], [false]])('pipelined %s: a refusal', (pipelined) => {
    it.each(steps.flatMap((step) => codes.map((code) => [step, code] as const)))('at %s with %i', (step, code) => {
      const s = ready(pipelined ? ALL : ['8BITMIME', 'SIZE 1000000']);
      s.start(txn());
      const good: Record<Step, SmtpReply> = { mail: r(250), rcpt: r(250), data: r(354), message: r(250) };
      const at = steps.indexOf(step);
      for (const st of steps.slice(0, at)) s.receive(good[st]);
      const refusal = r(code, 'refused');
      let out = s.receive(refusal);
      const failure = { kind: 'reply', phase: step, reply: refusal };
      if (code === 421) {
        // 421: the transaction fails and the connection is over, whatever was still to come.
        expect(out.actions).toEqual([{ type: 'transaction_done', result: { ok: false, failure } }, { type: 'close', failure }]);
        expect(s.state).toBe('closed');
        return;
      }
      if (pipelined && (step === 'mail' || step === 'rcpt')) {
        // The replies already asked for are still read, in order; a 354 gets an empty message.
        expect(out.actions).toEqual([]);
        if (step === 'mail') expect(s.receive(r(554, 'no valid recipients')).actions).toEqual([]);
        out = s.receive(r(354));
        expect(text(out)).toBe('.\r\n');
        out = s.receive(r(250));
      }
      expect(out.actions).toEqual([{ type: 'transaction_done', result: { ok: false, failure } }]);
      expect(text(out)).toBe('RSET\r\n');
      expect(s.state).toBe('rset');
      expect(s.receive(r(250)).actions).toEqual([{ type: 'ready' }]);
      // The connection takes the next copy.
      expect(text(s.start(txn()))).toMatch(/^MAIL FROM:<>/);
    });
  });

  it('a refused RSET ends the connection', () => {
    const s = ready();
    s.start(txn());
    s.receive(r(550)); s.receive(r(503)); s.receive(r(503));
    expect(s.receive(r(500, 'no')).actions).toEqual([{ type: 'close', failure: { kind: 'reply', phase: 'rset', reply: r(500, 'no') } }]);
  });

  it('421 in reply to RSET or while idle-waiting for QUIT ends the connection', () => {
    const s = ready();
    s.start(txn());
    s.receive(r(550)); s.receive(r(503)); s.receive(r(503));
    expect(s.receive(r(421, 'bye')).actions).toEqual([{ type: 'close', failure: { kind: 'reply', phase: 'rset', reply: r(421, 'bye') } }]);
  });

  it.each(['mail', 'rcpt', 'data', 'message'] as const)('a close, a timeout or an abort while waiting at %s fails the copy and the connection', (step) => {
    for (const end of ['close', 'timeout', 'abort'] as const) {
      const s = ready(['8BITMIME']);
      s.start(txn());
      if (step !== 'mail') s.receive(r(250));
      if (step === 'data' || step === 'message') s.receive(r(250));
      if (step === 'message') s.receive(r(354));
      expect(s.phase).toBe(step);
      const out = end === 'close' ? s.closed('reset', 'ECONNRESET') : end === 'timeout' ? s.timeout('slow') : s.abort('too old');
      const kind = end === 'close' ? 'network' : end === 'timeout' ? 'timeout' : 'aborted';
      expect(out.actions).toEqual([
        { type: 'transaction_done', result: { ok: false, failure: expect.objectContaining({ kind, phase: step }) } },
        { type: 'close', failure: expect.objectContaining({ kind, phase: step }) },
      ]);
    }
  });

  it('start() outside ready is a programming error', () => {
    const s = new ClientSession('gw.example.test');
    expect(() => s.start(txn())).toThrow(/start\(\) while greeting/);
  });

  it('parseEhlo reads the keywords, case-insensitively, with SIZE\'s limit', () => {
    expect(parseEhlo(r(250, 'mx', 'pipelining', 'Size 123', 'chunking', 'BINARYMIME', '8bitmime', 'STARTTLS'))).toEqual({
      pipelining: true, eightBitMime: true, chunking: true, binaryMime: true, startTls: true, size: 123,
    });
    expect(parseEhlo(r(250, 'mx')).size).toBeUndefined();
    expect(parseEhlo(r(250, 'mx', 'SIZE nonsense')).size).toBe(0);
  });
});
