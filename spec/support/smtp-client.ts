/**
 * A raw scripted SMTP client for integration specs: one command, one reply, in order, over a plain
 * net.Socket to an IP literal (no DNS). The caller controls every command (EHLO, several messages,
 * RSET mid-transaction, AUTH PLAIN); DATA is dot-stuffed here. Test support only: imports nothing from lib/.
 */
import * as net from 'node:net';

export interface SmtpReply {
  code: number;
  /** Reply lines without the code and separator. */
  lines: string[];
  /** The reply as received, lines joined by '\n'. */
  text: string;
}

export interface SmtpMessage {
  from: string;
  to: string[];
  /** The message (headers, blank line, body), CRLF line ends; dot-stuffing is done by the client. */
  data: Buffer | string;
  mailParams?: string[];
  /** Per recipient ESMTP parameters, same index as `to`. */
  rcptParams?: string[][];
}

export class SmtpError extends Error {
  constructor(readonly command: string, readonly reply: SmtpReply) {
    super(`SMTP ${command} -> ${reply.text}`);
  }
}

/** Doubles a leading '.' on every line and makes sure the data ends with CRLF. */
export function dotStuff(data: Buffer): Buffer {
  const s = data.toString('latin1');
  let out = (s.startsWith('.') ? '.' : '') + s.replace(/\r\n\./g, '\r\n..');
  if (!out.endsWith('\r\n')) out += '\r\n';
  return Buffer.from(out, 'latin1');
}

/** The queue id in a 250 reply to DATA: Postfix `queued as ID`, Sendmail `2.0.0 ID Message accepted`. */
export function queueIdFromReply(reply: SmtpReply): string | undefined {
  const m = /queued as ([0-9A-Za-z]+)/.exec(reply.text) ?? /^(?:\d\.\d+\.\d+ )?([0-9A-Za-z]+) Message accepted/m.exec(reply.lines.join('\n'));
  return m?.[1];
}

export class SmtpClient {
  readonly transcript: string[] = [];
  #socket: net.Socket;
  #buf = '';
  #pending: string[] = [];
  #replies: SmtpReply[] = [];
  #waiters: { resolve: (r: SmtpReply) => void; reject: (e: Error) => void }[] = [];
  #closed: Error | undefined;
  #timeoutMs: number;
  greeting!: SmtpReply;

  private constructor(socket: net.Socket, timeoutMs: number) {
    this.#socket = socket;
    this.#timeoutMs = timeoutMs;
    socket.setNoDelay(true);
    socket.on('data', (d: Buffer) => this.#onData(d));
    const fail = (err: Error): void => {
      this.#closed ??= err;
      for (const w of this.#waiters.splice(0)) w.reject(err);
    };
    socket.on('error', fail);
    socket.on('close', () => fail(new Error('SMTP connection closed')));
  }

  /** Connects to 127.0.0.1 (or another IP literal) and reads the greeting. */
  static async connect(port: number, opts: { host?: string; timeoutMs?: number } = {}): Promise<SmtpClient> {
    const host = opts.host ?? '127.0.0.1';
    if (net.isIP(host) === 0) throw new Error(`smtp-client: ${host} is not an IP literal (no DNS in tests)`);
    const socket = net.connect({ port, host });
    const client = new SmtpClient(socket, opts.timeoutMs ?? 30_000);
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', reject);
    });
    client.greeting = await client.#next('<greeting>');
    return client;
  }

  #onData(d: Buffer): void {
    this.#buf += d.toString('latin1');
    let nl: number;
    while ((nl = this.#buf.indexOf('\n')) >= 0) {
      const line = this.#buf.slice(0, nl).replace(/\r$/, '');
      this.#buf = this.#buf.slice(nl + 1);
      this.transcript.push(`<- ${line}`);
      this.#pending.push(line);
      if (!/^\d{3}-/.test(line)) {
        const lines = this.#pending.splice(0);
        const reply: SmtpReply = { code: Number(line.slice(0, 3)), lines: lines.map((l) => l.slice(4)), text: lines.join('\n') };
        const w = this.#waiters.shift();
        if (w !== undefined) w.resolve(reply);
        else this.#replies.push(reply);
      }
    }
  }

  #next(what: string): Promise<SmtpReply> {
    const queued = this.#replies.shift();
    if (queued !== undefined) return Promise.resolve(queued);
    if (this.#closed !== undefined) return Promise.reject(this.#closed);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`smtp-client: no reply to ${what} within ${this.#timeoutMs} ms`)), this.#timeoutMs);
      this.#waiters.push({
        resolve: (r) => (clearTimeout(timer), resolve(r)),
        reject: (e) => (clearTimeout(timer), reject(e)),
      });
    });
  }

  /** Sends one command line and returns its reply (whatever the code). */
  async command(line: string): Promise<SmtpReply> {
    this.transcript.push(`-> ${line}`);
    this.#socket.write(`${line}\r\n`, 'latin1');
    return this.#next(line);
  }

  /** Like command() but throws SmtpError unless the reply code is in `expect` (default 2xx). */
  async expect(line: string, expect: (code: number) => boolean = (c) => c >= 200 && c < 300): Promise<SmtpReply> {
    const r = await this.command(line);
    if (!expect(r.code)) throw new SmtpError(line, r);
    return r;
  }

  ehlo(name = 'client.test'): Promise<SmtpReply> {
    return this.expect(`EHLO ${name}`);
  }

  mail(from: string, params: string[] = []): Promise<SmtpReply> {
    return this.expect(['MAIL FROM:<' + from + '>', ...params].join(' '));
  }

  rcpt(to: string, params: string[] = []): Promise<SmtpReply> {
    return this.expect(['RCPT TO:<' + to + '>', ...params].join(' '));
  }

  rset(): Promise<SmtpReply> {
    return this.expect('RSET');
  }

  /** AUTH PLAIN with an initial response. */
  authPlain(user: string, password: string): Promise<SmtpReply> {
    const token = Buffer.from(`\0${user}\0${password}`, 'utf8').toString('base64');
    this.transcript.push('-> AUTH PLAIN <credentials>');
    this.#socket.write(`AUTH PLAIN ${token}\r\n`);
    return this.#next('AUTH PLAIN').then((r) => {
      if (r.code !== 235) throw new SmtpError('AUTH PLAIN', r);
      return r;
    });
  }

  /** DATA, then the dot-stuffed message and the final dot; returns the reply to the final dot. */
  async data(message: Buffer | string): Promise<SmtpReply> {
    await this.expect('DATA', (c) => c === 354);
    const body = dotStuff(typeof message === 'string' ? Buffer.from(message, 'latin1') : message);
    this.transcript.push(`-> <${body.length} bytes of data>`, '-> .');
    this.#socket.write(body);
    this.#socket.write('.\r\n');
    const r = await this.#next('end of DATA');
    if (r.code < 200 || r.code >= 300) throw new SmtpError('end of DATA', r);
    return r;
  }

  /** MAIL, RCPT for each recipient, DATA; returns the final reply and the queue id it names. */
  async send(msg: SmtpMessage): Promise<{ reply: SmtpReply; queueId: string | undefined }> {
    await this.mail(msg.from, msg.mailParams);
    for (const [i, to] of msg.to.entries()) await this.rcpt(to, msg.rcptParams?.[i]);
    const reply = await this.data(msg.data);
    return { reply, queueId: queueIdFromReply(reply) };
  }

  /** QUIT and wait for the server to close the connection. */
  async quit(): Promise<void> {
    if (this.#closed === undefined) {
      const closed = new Promise<void>((resolve) => this.#socket.once('close', () => resolve()));
      await this.expect('QUIT', (c) => c === 221);
      await closed;
    }
  }

  /** Drops the connection without QUIT (idempotent). */
  close(): void {
    this.#socket.destroy();
  }
}
