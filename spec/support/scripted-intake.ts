/**
 * A scripted message intake for the forwarder specs: a real smtp-server with STARTTLS on
 * 127.0.0.1 (test CA certificates from spec/fixtures/tls), replies scripted per message, counts of
 * TCP connections seen at the server (open, peak, total), and for every accepted message its
 * envelope, bytes and the TLS protocol it came over. Also: a server that accepts and never speaks,
 * and a closed port. Reverse lookups are off (they would query the machine's resolver).
 */
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { SMTPServer, type SMTPServerOptions, type SMTPServerSession } from 'smtp-server';

// From spec/support (ts-jest) or from dist/spec/support (the compiled demo): the fixtures stay in spec/.
const TLS_DIR = [path.join(__dirname, '..', 'fixtures', 'tls'), path.join(__dirname, '..', '..', '..', 'spec', 'fixtures', 'tls')]
  .find((d) => fs.existsSync(path.join(d, 'ca.crt'))) ?? path.join(__dirname, '..', 'fixtures', 'tls');
/** The test CA's PEM file (for `tls_ca_file`). */
export const TEST_CA_FILE = path.join(TLS_DIR, 'ca.crt');
export const TEST_CA = fs.readFileSync(TEST_CA_FILE);

export type CertName = 'intake' | 'untrusted' | 'wrong-name';

/** What the intake answers to one message: accept, or a code at MAIL FROM, RCPT TO or end of DATA. */
export type Reply = 'accept' | { stage: 'mail' | 'rcpt' | 'data'; code: number; message: string };

export interface IntakeOptions {
  cert?: CertName;
  /** STARTTLS not advertised in EHLO (the command still works). */
  hideStartTls?: boolean;
  /** STARTTLS neither advertised nor accepted. */
  noStartTls?: boolean;
  minVersion?: 'TLSv1' | 'TLSv1.1' | 'TLSv1.2' | 'TLSv1.3';
  maxVersion?: 'TLSv1' | 'TLSv1.1' | 'TLSv1.2' | 'TLSv1.3';
  /** The first N connections get "421" instead of the greeting. */
  refuseConnections?: number;
  /** Replies for successive messages (MAIL FROM transactions); after the last one: accept. */
  replies?: Reply[];
  /** ms to hold each message before the final reply. */
  holdMs?: number;
  host?: string;
  port?: number;
  /** PIPELINING not offered in EHLO. */
  hidePipelining?: boolean;
  /** 8BITMIME not offered in EHLO (smtp-server then still takes BODY=8BITMIME; a client must not send it). */
  hide8BitMime?: boolean;
  /** The SIZE limit it offers and enforces; default 50 MiB. */
  size?: number;
}

export interface ReceivedMessage {
  mailFrom: string;
  rcptTo: string[];
  raw: Buffer;
  secure: boolean;
  tlsProtocol: string | undefined;
  servername: string | undefined;
}

const err = (code: number, message: string): Error => Object.assign(new Error(message), { responseCode: code });

export class ScriptedIntake {
  readonly received: ReceivedMessage[] = [];
  /** MAIL FROM transactions seen (every attempt that got that far). */
  transactions = 0;
  connectionsTotal = 0;
  connectionsPeak = 0;
  readonly #server: SMTPServer;
  readonly #sockets = new Set<net.Socket>();
  readonly #protocols = new Map<string, string>();
  readonly #replies: Reply[];
  #refused = 0;
  #port = 0;

  private constructor(readonly options: IntakeOptions) {
    this.#replies = [...(options.replies ?? [])];
    const cert = options.cert ?? 'intake';
    const serverOptions: SMTPServerOptions = {
      key: fs.readFileSync(path.join(TLS_DIR, `${cert}.key`)),
      cert: fs.readFileSync(path.join(TLS_DIR, `${cert}.crt`)),
      minVersion: options.minVersion ?? 'TLSv1.2',
      maxVersion: options.maxVersion ?? 'TLSv1.3',
      disableReverseLookup: true,
      authOptional: true,
      disabledCommands: options.noStartTls ? ['AUTH', 'STARTTLS'] : ['AUTH'],
      hideSTARTTLS: options.hideStartTls === true || options.noStartTls === true,
      logger: false,
      size: options.size ?? 50 * 1024 * 1024,
      hidePIPELINING: options.hidePipelining === true,
      hide8BITMIME: options.hide8BitMime === true,
      onConnect: (_session, cb) => {
        if (this.#refused < (options.refuseConnections ?? 0)) {
          this.#refused += 1;
          cb(err(421, 'Service not available, try later'));
          return;
        }
        cb();
      },
      onSecure: (socket, session, cb) => {
        const proto = (socket as unknown as { getProtocol?: () => string | null }).getProtocol?.();
        if (proto) this.#protocols.set(session.id, proto);
        cb();
      },
      onMailFrom: (_address, session, cb) => {
        this.transactions += 1;
        const reply = this.#replies.shift() ?? 'accept';
        (session as SMTPServerSession & { reply?: Reply }).reply = reply;
        if (reply !== 'accept' && reply.stage === 'mail') cb(err(reply.code, reply.message));
        else cb();
      },
      onRcptTo: (_address, session, cb) => {
        const reply = (session as SMTPServerSession & { reply?: Reply }).reply;
        if (reply && reply !== 'accept' && reply.stage === 'rcpt') cb(err(reply.code, reply.message));
        else cb();
      },
      onData: (stream, session, cb) => {
        const chunks: Buffer[] = [];
        stream.on('data', (c: Buffer) => chunks.push(c));
        stream.on('end', () => {
          const reply = (session as SMTPServerSession & { reply?: Reply }).reply;
          const finish = (): void => {
            if (reply && reply !== 'accept' && reply.stage === 'data') {
              cb(err(reply.code, reply.message));
              return;
            }
            const env = session.envelope;
            this.received.push({
              mailFrom: env.mailFrom === false ? '(none)' : env.mailFrom.address,
              rcptTo: env.rcptTo.map((r) => r.address),
              raw: Buffer.concat(chunks),
              secure: session.secure,
              tlsProtocol: this.#protocols.get(session.id),
              servername: (session as SMTPServerSession & { servername?: string }).servername,
            });
            cb(null, '2.0.0 Ok: queued as TEST');
          };
          if (options.holdMs) setTimeout(finish, options.holdMs);
          else finish();
        });
      },
    };
    this.#server = new SMTPServer(serverOptions);
    this.#server.on('error', () => { /* client-caused TLS errors are expected in these specs */ });
  }

  static async start(options: IntakeOptions = {}): Promise<ScriptedIntake> {
    const intake = new ScriptedIntake(options);
    const raw = (intake.#server as unknown as { server: net.Server }).server;
    raw.on('connection', (socket: net.Socket) => {
      intake.connectionsTotal += 1;
      intake.#sockets.add(socket);
      intake.connectionsPeak = Math.max(intake.connectionsPeak, intake.connectionsOpen);
    });
    await new Promise<void>((resolve, reject) => {
      intake.#server.once('error', reject);
      intake.#server.listen(options.port ?? 0, options.host ?? '127.0.0.1', () => resolve());
    });
    intake.#port = (raw.address() as net.AddressInfo).port;
    return intake;
  }

  get port(): number {
    return this.#port;
  }

  /**
   * TCP connections open at the server right now. smtp-server strips the raw socket's listeners
   * on STARTTLS, so a closed socket is recognised by its `destroyed` flag, not by its 'close' event.
   */
  get connectionsOpen(): number {
    for (const s of this.#sockets) if (s.destroyed) this.#sockets.delete(s);
    return this.#sockets.size;
  }

  /** Resolves when no connection is open any more (or rejects after `ms`). */
  async waitIdle(ms: number): Promise<void> {
    const until = Date.now() + ms;
    while (this.connectionsOpen > 0) {
      if (Date.now() > until) throw new Error(`intake still has ${this.connectionsOpen} connection(s) open after ${ms} ms`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  async close(): Promise<void> {
    for (const s of this.#sockets) s.destroy();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }
}

/** Accepts TCP connections and never sends a byte. */
export class SilentServer {
  readonly #server = net.createServer((s) => { this.#sockets.add(s); s.on('error', () => {}); s.once('close', () => this.#sockets.delete(s)); });
  readonly #sockets = new Set<net.Socket>();

  static async start(at: { host: string; port: number } = { host: '127.0.0.1', port: 0 }): Promise<SilentServer> {
    const s = new SilentServer();
    await new Promise<void>((resolve, reject) => {
      s.#server.once('error', reject);
      s.#server.listen(at.port, at.host, resolve);
    });
    return s;
  }

  get port(): number {
    return (this.#server.address() as net.AddressInfo).port;
  }

  get connections(): number {
    return this.#sockets.size;
  }

  async close(): Promise<void> {
    for (const s of this.#sockets) s.destroy();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }
}

/** A loopback port nothing listens on (connections to it are refused). */
export async function closedPort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve));
  const port = (s.address() as net.AddressInfo).port;
  await new Promise<void>((resolve) => s.close(() => resolve()));
  return port;
}
