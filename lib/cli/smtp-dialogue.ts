/**
 * check-intake's SMTP dialogue (a diagnostic, not the delivery path): a thin driver on lib/smtp's reply
 * parser that sends a command, reads its reply, upgrades after STARTTLS even to an untrusted certificate
 * (check-intake shows it, then judges it) and keeps a transcript; every wait is bounded. Imports lib/smtp's parser.
 */
import type * as net from 'node:net';
import * as tls from 'node:tls';
import { ReplyParser, type SmtpReply } from '../smtp/reply-parser';

export type { SmtpReply };

/** The reply's lines as the server wrote them ('250-first', '250 last'), for the transcript. */
export function wireLines(r: SmtpReply): string[] {
  return r.lines.map((l, i) => {
    const text = i === 0 && r.enhanced !== undefined ? (l === '' ? r.enhanced : `${r.enhanced} ${l}`) : l;
    return `${r.code}${i === r.lines.length - 1 ? ' ' : '-'}${text}`;
  });
}

export class SmtpDialogue {
  readonly transcript: string[] = [];
  #socket: net.Socket;
  #parser = new ReplyParser();
  #replies: SmtpReply[] = [];
  #waiter: { resolve: (r: SmtpReply) => void; reject: (e: Error) => void } | undefined;
  #failure: Error | undefined;
  readonly #timeoutMs: number;

  constructor(socket: net.Socket, timeoutMs: number) {
    this.#socket = socket;
    this.#timeoutMs = timeoutMs;
    this.#attach(socket);
  }

  #attach(socket: net.Socket): void {
    socket.on('data', (d: Buffer) => {
      try {
        for (const r of this.#parser.push(d)) {
          this.transcript.push(...wireLines(r).map((l) => `< ${l}`));
          this.#replies.push(r);
        }
      } catch (err) {
        this.#fail(err as Error);
        return;
      }
      this.#deliver();
    });
    socket.on('error', (err) => this.#fail(err));
    socket.on('close', () => this.#fail(new Error('the server closed the connection')));
  }

  #fail(err: Error): void {
    this.#failure ??= err;
    const w = this.#waiter;
    this.#waiter = undefined;
    w?.reject(this.#failure);
  }

  #deliver(): void {
    const w = this.#waiter;
    const r = this.#replies.shift();
    if (w === undefined || r === undefined) {
      if (r !== undefined) this.#replies.unshift(r);
      return;
    }
    this.#waiter = undefined;
    w.resolve(r);
  }

  /** The next reply (the greeting first). */
  read(what: string): Promise<SmtpReply> {
    const ready = this.#replies.shift();
    if (ready) return Promise.resolve(ready);
    if (this.#failure) return Promise.reject(this.#failure);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#waiter = undefined;
        reject(new Error(`no reply to ${what} within ${this.#timeoutMs / 1000}s`));
      }, this.#timeoutMs);
      this.#waiter = {
        resolve: (r) => { clearTimeout(timer); resolve(r); },
        reject: (e) => { clearTimeout(timer); reject(e); },
      };
    });
  }

  /** Send one command line and read its reply. */
  command(line: string): Promise<SmtpReply> {
    this.transcript.push(`> ${line}`);
    this.#socket.write(`${line}\r\n`, 'latin1');
    return this.read(line.split(' ')[0]!);
  }

  /** Send raw bytes (the DATA content) and read the reply that ends it. */
  send(bytes: Buffer, what: string): Promise<SmtpReply> {
    this.transcript.push(`> (${bytes.length} bytes of ${what})`);
    this.#socket.write(bytes);
    return this.read(what);
  }

  /** After a 220 to STARTTLS: the TLS handshake on the same connection. */
  startTls(options: tls.ConnectionOptions): Promise<tls.TLSSocket> {
    const plain = this.#socket;
    plain.removeAllListeners('data');
    plain.removeAllListeners('close');
    plain.removeAllListeners('error');
    plain.on('error', () => { /* reported by the TLS socket */ });
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        secure.destroy();
        reject(new Error(`TLS handshake not done within ${this.#timeoutMs / 1000}s`));
      }, this.#timeoutMs);
      const secure = tls.connect({ ...options, socket: plain }, () => {
        clearTimeout(timer);
        secure.removeListener('error', onError);
        this.#socket = secure;
        this.#parser = new ReplyParser();
        this.#attach(secure);
        resolve(secure);
      });
      const onError = (err: Error): void => {
        clearTimeout(timer);
        reject(err);
      };
      secure.once('error', onError);
    });
  }

  close(): void {
    this.#socket.destroy();
  }
}
