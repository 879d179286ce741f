/**
 * The SMTP client session against a model server that answers every command with a random reply
 * (any class, 421 anywhere), with random closes and timeouts in between (fast-check): the session
 * never throws, every started copy gets exactly one result, a body goes out only after MAIL and RCPT
 * were accepted and DATA got 354, nothing is written after a close, and without PIPELINING only one
 * command waits for its reply at a time.
 */
import fc from 'fast-check';
import { ClientSession, type SessionOutput, type TransactionResult } from '../../../lib/smtp/client-session';
import { SmtpProtocolError } from '../../../lib/smtp/errors';
import type { SmtpReply } from '../../../lib/smtp/reply-parser';

const BODY = Buffer.from('Subject: x\r\n\r\n.dot\r\nline\r\n');

/** The server's side of the wire: the commands it owes a reply, and the DATA/BDAT payloads it got. */
class ModelServer {
  buf = '';
  mode: 'cmd' | 'data' = 'cmd';
  bdatLeft = 0;
  owed: string[] = [];
  /** Per transaction (since MAIL): the codes given to MAIL, RCPT, DATA. */
  given: Record<string, number> = {};
  bodies = 0;

  take(out: SessionOutput): void {
    this.buf += Buffer.concat(out.write).toString('latin1');
    for (;;) {
      if (this.bdatLeft > 0) {
        const n = Math.min(this.bdatLeft, this.buf.length);
        this.buf = this.buf.slice(n);
        this.bdatLeft -= n;
        if (this.bdatLeft > 0) return;
        this.bodies += 1;
        this.owed.push('EOD');
        continue;
      }
      if (this.mode === 'data') {
        const end = this.buf.startsWith('.\r\n') ? 0 : this.buf.indexOf('\r\n.\r\n');
        if (end < 0) return;
        const cut = end === 0 ? 3 : end + 5;
        if (this.buf.slice(0, cut) !== '.\r\n') this.bodies += 1;
        this.buf = this.buf.slice(cut);
        this.mode = 'cmd';
        this.owed.push('EOD');
        continue;
      }
      const eol = this.buf.indexOf('\r\n');
      if (eol < 0) return;
      const line = this.buf.slice(0, eol);
      this.buf = this.buf.slice(eol + 2);
      const verb = line.split(/[ :]/)[0]!.toUpperCase();
      if (verb === 'MAIL') this.given = {};
      if (verb === 'BDAT') this.bdatLeft = Number(line.split(' ')[1]);
      if (verb !== 'BDAT') this.owed.push(verb);
    }
  }
}

const reply = (code: number): SmtpReply => ({ code, lines: [code === 354 ? 'go ahead' : 'text'] });

describe('ClientSession under random replies, closes and timeouts (property)', () => {
  it('never throws, one result per copy, bodies only after acceptance, nothing after a close', () => {
    const code = fc.constantFrom(220, 250, 251, 354, 421, 450, 451, 452, 500, 550, 552, 554);
    const fault = fc.constantFrom('none', 'none', 'none', 'none', 'none', 'none', 'close', 'timeout', 'protocol');
    const keywords = fc.subarray(['PIPELINING', '8BITMIME', 'CHUNKING', 'BINARYMIME', 'SIZE 100000']);
    fc.assert(fc.property(keywords, fc.array(fc.tuple(code, fault), { minLength: 1, maxLength: 60 }), fc.array(fc.constantFrom('7bit', '8bit', 'binary'), { minLength: 1, maxLength: 4 }), (caps, steps, bodies) => {
      const s = new ClientSession('gw.example.test');
      const server = new ModelServer();
      let closed = false;
      let started = 0;
      const results: TransactionResult[] = [];
      let readyNow = false;
      const apply = (out: SessionOutput): void => {
        if (closed) {
          expect(out.write).toEqual([]);
          expect(out.actions).toEqual([]);
        }
        if (!caps.includes('PIPELINING') && s.state === 'transaction') expect(server.owed.length).toBeLessThanOrEqual(1);
        server.take(out);
        if (!caps.includes('PIPELINING') && s.state === 'transaction') expect(server.owed.length).toBeLessThanOrEqual(1);
        for (const a of out.actions) {
          if (a.type === 'transaction_done') results.push(a.result);
          if (a.type === 'ready') readyNow = true;
          if (a.type === 'close') closed = true;
        }
      };
      // Setup: greeting, EHLO, STARTTLS, handshake, EHLO over TLS with the drawn keywords.
      apply(s.receive(reply(220)));
      apply(s.receive({ code: 250, lines: ['mx', 'STARTTLS'] }));
      apply(s.receive(reply(220)));
      apply(s.tlsUp());
      server.owed = [];
      apply(s.receive({ code: 250, lines: ['mx', ...caps] }));
      let next = 0;
      for (const [c, f] of steps) {
        if (closed) break;
        if (readyNow && s.state === 'ready' && next < bodies.length) {
          readyNow = false;
          const body = bodies[next++]!;
          started += 1;
          apply(s.start({ recipient: 'journal@intake.test', raw: BODY, bytes: BODY.length, body }));
          continue;
        }
        if (f === 'close') { apply(s.closed()); continue; }
        if (f === 'timeout') { apply(s.timeout('test')); continue; }
        if (f === 'protocol') { apply(s.protocolError(new SmtpProtocolError('SMTP_REPLY_MALFORMED', 'test'))); continue; }
        const verb = server.owed.shift();
        if (verb === undefined) {
          if (s.state === 'ready' && next >= bodies.length) apply(s.quit());
          continue;
        }
        const answer = verb === 'DATA' && c === 354 ? 354 : c === 354 ? 250 : c;
        server.given[verb] = answer;
        if (verb === 'DATA' && answer === 354) server.mode = 'data';
        const before = server.bodies;
        apply(s.receive(reply(answer)));
        if (server.bodies > before) {
          // A body went out: its envelope was accepted (and DATA got 354, unless it went by BDAT).
          expect([250, 251]).toContain(server.given['MAIL']);
          expect([250, 251]).toContain(server.given['RCPT']);
          if (server.given['DATA'] !== undefined) expect(server.given['DATA']).toBe(354);
        }
        if (verb === 'EOD' && results.length > 0 && results[results.length - 1]!.ok) {
          expect(answer).toBe(250);
        }
      }
      // However it ended, a close settles every copy; one still running gets its result from the close.
      if (!closed) apply(s.closed('test over', 'ECONNRESET'));
      expect(results.length).toBe(started);
      for (const res of results) if (res.ok) expect(res.reply.code).toBe(250);
    }), { numRuns: 2000 });
  });
});
