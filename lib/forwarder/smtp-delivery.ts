/**
 * The delivery agent — *how* one attempt reaches the intake: route (relay or MX), one nodemailer
 * pool per (intake domain, host) so certificates are checked against that host's name, STARTTLS
 * required with TLS >= 1.2 and verification, null sender, next MX on connection failures. We open
 * the TCP connections ourselves (nodemailer's documented `getSocket` hook): that gives DCIDs, exact
 * connection counts, a global cap, and the per-connection log lines. Imports util and this folder.
 */
import * as net from 'node:net';
import * as tls from 'node:tls';
import { Readable } from 'node:stream';
import nodemailer from 'nodemailer';
import SMTPPool from 'nodemailer/lib/smtp-pool';
import type { Clock } from '../util/clock';
import type { Logger } from '../util/logger';
import { TdcError, describeError } from '../util/errors';
import { classifyFailure } from './classify';
import { ConnectionSlots } from './connection-slots';
import { ConnectFailure, abortError, errorText, isFailover, raceAbort } from './delivery-errors';
import { isPlaintext, sidOfResource, tlsFactsOf } from './nodemailer-peek';
import { installFastDotStuffing } from './nodemailer-data-stream';
import { Router, createResolver, type DnsResolverLike, type RouteHost } from './route';
import { domainOf, type ForwarderOptions } from './types';
import type { DeliveryContext, QueuedCopy } from './delivery-agent';
import type { ConnectionEvent, DnsEvent } from './events';

/** What one attempt returns when the intake took the copy (failures throw; nodemailer-agent.ts classifies). */
export interface SmtpSent {
  response: string;
  dcid?: number;
}

/** The DCID a failure carries, if this agent attached one. */
export function dcidOf(err: unknown): number | undefined {
  if (typeof err === 'object' && err !== null && 'dcid' in err) {
    const d = (err as { dcid?: unknown }).dcid;
    if (typeof d === 'number') return d;
  }
  return undefined;
}

/** Idle pooled connections QUIT after this (nodemailer's own timer): "close when the queue drains". */
export const IDLE_CLOSE_MS = 1000;

type Mailer = ReturnType<typeof nodemailer.createTransport>;

interface Transport {
  key: string;
  domain: string;
  host: RouteHost;
  /** Addresses of the host as of the latest route lookup; getSocket tries them in order. */
  addresses: string[];
  pool: SMTPPool;
  mailer: Mailer;
  inFlight: number;
}

interface Conn {
  dcid: number;
  domain: string;
  host: string;
  ip: string;
  port: number;
  localAddress: string;
  transport: Transport;
  delivered: number;
  sid: string | undefined;
  /** STARTTLS sent, handshake not finished: errors now are TLS errors. */
  tlsPhase: boolean;
  tlsLogged: boolean;
}

interface PendingSend {
  copy: QueuedCopy;
  dcid: number | undefined;
  guard: AbortController;
}

/** The signature of everything a transport is built from: a change retires the transports. */
function transportSignature(o: ForwarderOptions): string {
  return JSON.stringify([o.relay, (o.tlsCa ?? []).map((b) => b.toString('base64')), o.maxConnections,
    o.messagesPerConnection, o.connectTimeout, o.commandTimeout, o.heloName, o.dnsServers, o.tlsServername, o.mxPort]);
}

export interface SmtpDeliveryDeps {
  logger: Logger;
  clock: Clock;
  /** Tests: a resolver instead of dns.promises.Resolver on options.dnsServers. */
  resolver?: DnsResolverLike;
  /** The forwarder's DCID sequence. */
  nextDcid: () => number;
  /** Connection and DNS facts, for the mail log and the tests. */
  onEvent: (e: ConnectionEvent | DnsEvent) => void;
  /** A connection took a copy. */
  onDeliveryStart: (copy: QueuedCopy, dcid: number) => void;
}

export class SmtpDelivery {
  #o: ForwarderOptions;
  readonly #log: Logger;
  readonly #clock: Clock;
  readonly #hooks: Pick<SmtpDeliveryDeps, 'nextDcid' | 'onEvent' | 'onDeliveryStart'>;
  #router: Router;
  readonly #customResolver: boolean;
  readonly #slots: ConnectionSlots;
  readonly #transports = new Map<string, Transport>();
  readonly #conns = new Set<Conn>();
  readonly #bySid = new Map<string, Conn>();
  readonly #sends = new Map<string, PendingSend>();
  readonly #byDomain = new Map<string, number>();
  #sendSeq = 0;
  #closed = false;
  #allClosed: (() => void)[] = [];
  /** One TLS context per CA setting: building one parses every root CA, far too slow per connection. */
  #tlsContext: { ca: Buffer[] | undefined; context: tls.SecureContext } | undefined;

  constructor(options: ForwarderOptions, deps: SmtpDeliveryDeps) {
    this.#o = { ...options };
    this.#log = deps.logger;
    this.#clock = deps.clock;
    this.#hooks = deps;
    this.#customResolver = deps.resolver !== undefined;
    this.#router = new Router(deps.resolver ?? createResolver(options.dnsServers, options.connectTimeout), deps.clock,
      { relay: options.relay, mxPort: options.mxPort });
    this.#slots = new ConnectionSlots(options.maxConnections, () => this.#relieve());
    if (installFastDotStuffing() === 'kept-nodemailer') {
      this.#log.warn('nodemailer\'s DATA stream is not the one tdc-milter was checked against; using its own (slower) dot-stuffing');
    }
  }

  /** Open connections, in total and per intake domain. */
  connections(): { total: number; byDomain: Map<string, number> } {
    return { total: this.#conns.size, byDomain: new Map(this.#byDomain) };
  }

  reconfigure(options: ForwarderOptions): void {
    const changed = transportSignature(options) !== transportSignature(this.#o);
    const dnsChanged = JSON.stringify(options.dnsServers) !== JSON.stringify(this.#o.dnsServers)
      || options.connectTimeout !== this.#o.connectTimeout;
    this.#o = { ...options };
    this.#slots.setMax(options.maxConnections);
    if (dnsChanged && !this.#customResolver) {
      this.#router = new Router(createResolver(options.dnsServers, options.connectTimeout), this.#clock,
        { relay: options.relay, mxPort: options.mxPort });
    } else {
      this.#router.reconfigure({ relay: options.relay, mxPort: options.mxPort });
    }
    if (changed) for (const t of [...this.#transports.values()]) this.#retire(t, false);
  }

  /** One delivery attempt (the queue's DeliverFn). */
  readonly deliver = async (copy: QueuedCopy, ctx: DeliveryContext): Promise<SmtpSent> => {
    if (this.#closed) throw new TdcError('ECONFIG', 'forwarder closed');
    const domain = domainOf(copy.intakeAddress);
    if (!domain || copy.intakeAddress.indexOf('@') < 1 || /[\s<>]/.test(copy.intakeAddress)) {
      throw new TdcError('ECONFIG', `bad intake address ${JSON.stringify(copy.intakeAddress)}`);
    }
    const route = await raceAbort(this.#router.route(domain), ctx.signal);
    let last: unknown; // an Error only when it is needed: building one costs a stack trace per copy
    for (const host of route.hosts) {
      if (host.addresses.length === 0) {
        last = host.failure;
        continue;
      }
      if (ctx.signal.aborted) throw abortError(ctx.signal);
      const t = this.#transportFor(domain, host);
      t.addresses = host.addresses;
      try {
        return await this.#send(t, copy, ctx);
      } catch (err) {
        last = err;
        if (ctx.signal.aborted || !isFailover(err)) throw err;
      }
    }
    throw last ?? new TdcError('ECONFIG', `no host to try for ${domain}`);
  };

  /** Close every transport and wait (up to `waitMs`) for their connections to be gone. */
  async close(waitMs = 3000): Promise<void> {
    this.#closed = true;
    for (const t of [...this.#transports.values()]) this.#retire(t, true);
    this.#slots.setMax(Number.MAX_SAFE_INTEGER); // let waiters run and see that we are closed
    if (this.#conns.size === 0) return;
    await new Promise<void>((resolve) => {
      const timer = this.#clock.setTimer(waitMs, resolve);
      this.#allClosed.push(() => { timer.cancel(); resolve(); });
    });
  }

  #transportFor(domain: string, host: RouteHost): Transport {
    const key = `${domain}\u0000${host.name}\u0000${host.port}`;
    const existing = this.#transports.get(key);
    if (existing) return existing;
    const o = this.#o;
    const servername = o.tlsServername ?? (net.isIP(host.name) === 0 ? host.name : undefined);
    const tlsOptions: tls.ConnectionOptions = { secureContext: this.#secureContext(o.tlsCa), rejectUnauthorized: true };
    if (servername !== undefined) tlsOptions.servername = servername;
    const t = { key, domain, host, addresses: host.addresses, inFlight: 0 } as Transport;
    t.pool = new SMTPPool({
      host: host.name,
      port: host.port,
      secure: false,
      requireTLS: true,
      name: o.heloName,
      tls: tlsOptions,
      maxConnections: o.maxConnections,
      maxMessages: o.messagesPerConnection,
      maxRequeues: 0,
      idleTimeout: IDLE_CLOSE_MS,
      connectionTimeout: o.connectTimeout + o.commandTimeout,
      greetingTimeout: o.commandTimeout,
      // An idle pooled connection is QUIT by us after IDLE_CLOSE_MS; the inactivity timeout must not beat it.
      socketTimeout: Math.max(o.commandTimeout, 2 * IDLE_CLOSE_MS),
      dnsTimeout: o.connectTimeout,
      transactionLog: true,
      logger: this.#poolLogger(t),
      getSocket: (_opts, callback) => this.#getSocket(t, callback),
    });
    t.mailer = nodemailer.createTransport(t.pool);
    this.#transports.set(key, t);
    return t;
  }

  /** TLS >= 1.2, trusting the system CAs plus `tlsCa`; built once and reused by every connection. */
  #secureContext(tlsCa: Buffer[] | undefined): tls.SecureContext {
    if (this.#tlsContext?.ca !== tlsCa || this.#tlsContext === undefined) {
      const ca = tlsCa && tlsCa.length > 0 ? [...tls.rootCertificates, ...tlsCa.map((b) => b.toString('utf8'))] : undefined;
      this.#tlsContext = { ca: tlsCa, context: tls.createSecureContext({ minVersion: 'TLSv1.2', ...(ca ? { ca } : {}) }) };
    }
    return this.#tlsContext.context;
  }

  /** Stop using a transport: gracefully (busy connections finish) or by force. */
  #retire(t: Transport, force: boolean): void {
    if (this.#transports.get(t.key) === t) this.#transports.delete(t.key);
    t.pool.close({ force });
  }

  /** Someone waits for a connection slot: close transports that have nothing in flight. */
  #relieve(): void {
    for (const t of [...this.#transports.values()]) if (t.inFlight === 0) this.#retire(t, false);
  }

  async #send(t: Transport, copy: QueuedCopy, ctx: DeliveryContext): Promise<SmtpSent> {
    this.#sendSeq += 1;
    const token = `<tdc.${this.#sendSeq}.${copy.id.replace(/[^A-Za-z0-9.-]/g, '_')}@forwarder.invalid>`;
    const guard = new AbortController();
    const pending: PendingSend = { copy, dcid: undefined, guard };
    this.#sends.set(token, pending);
    t.inFlight += 1;
    try {
      const info = await t.mailer.sendMail({
        // Pieces go as a stream of themselves: never joined into one fresh buffer.
        raw: Buffer.isBuffer(copy.raw) ? copy.raw : Readable.from(copy.raw, { objectMode: false }),
        envelope: { from: '', to: [copy.intakeAddress] },
        messageId: token,
        signal: AbortSignal.any([ctx.signal, guard.signal]),
        disableFileAccess: true,
        disableUrlAccess: true,
      });
      return { response: String(info.response ?? ''), dcid: pending.dcid };
    } catch (err) {
      if (guard.signal.aborted && !ctx.signal.aborted) {
        throw Object.assign(new TdcError('ETLS', 'STARTTLS not in effect at delivery start; not sent in plaintext'), { dcid: pending.dcid });
      }
      if (pending.dcid !== undefined && dcidOf(err) === undefined && typeof err === 'object' && err !== null) {
        Object.assign(err, { dcid: pending.dcid });
      }
      throw err;
    } finally {
      t.inFlight -= 1;
      this.#sends.delete(token);
    }
  }

  /** nodemailer asks for a connection: take a slot, connect to the host's addresses in turn. */
  #getSocket(t: Transport, callback: (err: Error | null, socketOptions?: { connection: net.Socket; [key: string]: unknown }) => void): void {
    this.#slots.acquire(() => {
      // A retired transport still connects for the sends it already took; only close() stops that.
      if (this.#closed) {
        this.#slots.release();
        callback(new TdcError('ECONNECTION', 'forwarder closing'));
        return;
      }
      this.#connectNext(t, [...t.addresses], undefined, callback);
    });
  }

  #connectNext(t: Transport, addresses: string[], last: Error | undefined,
    callback: (err: Error | null, socketOptions?: { connection: net.Socket; [key: string]: unknown }) => void): void {
    const ip = addresses.shift();
    if (ip === undefined) {
      this.#slots.release();
      callback(last ?? new TdcError('ECONFIG', `no address for ${t.host.name}`));
      return;
    }
    const port = t.host.port;
    const dcid = this.#hooks.nextDcid();
    let settled = false;
    const socket = net.connect({ host: ip, port, family: net.isIPv6(ip) ? 6 : 4 });
    const fail = (err: ConnectFailure): void => {
      if (settled) return;
      settled = true;
      timer.cancel();
      socket.destroy();
      this.#hooks.onEvent({
        type: 'connection_error', at: this.#clock.now(), dcid, destination: t.domain, host: t.host.name, ip, port,
        localAddress: socket.localAddress ?? '', details: err.code === 'ETIMEDOUT' ? 'timeout' : connectDetails(err.originalCode), reason: err.message,
      });
      this.#connectNext(t, addresses, err, callback);
    };
    const timer = this.#clock.setTimer(this.#o.connectTimeout, () => {
      fail(new ConnectFailure(`connect timeout after ${this.#o.connectTimeout} ms to ${ip}:${port}`, 'ETIMEDOUT', 'ETIMEDOUT', ip, port, dcid));
    });
    socket.once('error', (e: NodeJS.ErrnoException) => {
      fail(new ConnectFailure(e.message, 'ESOCKET', e.code, ip, port, dcid));
    });
    socket.once('connect', () => {
      if (settled) return;
      settled = true;
      timer.cancel();
      socket.removeAllListeners('error');
      socket.on('error', () => {}); // nodemailer attaches its own handler next; this one only keeps a stray error from throwing
      const conn: Conn = { dcid, domain: t.domain, host: t.host.name, ip, port, localAddress: socket.localAddress ?? '', transport: t, sid: undefined, tlsPhase: false, tlsLogged: false, delivered: 0 };
      this.#conns.add(conn);
      this.#byDomain.set(t.domain, (this.#byDomain.get(t.domain) ?? 0) + 1);
      socket.once('close', () => this.#closedConn(conn));
      this.#hooks.onEvent({ type: 'connection_opened', at: this.#clock.now(), dcid, destination: t.domain, host: t.host.name, ip, port, localAddress: socket.localAddress ?? '' });
      callback(null, { connection: socket, logger: this.#connLogger(conn) });
    });
  }

  #closedConn(conn: Conn): void {
    if (!this.#conns.delete(conn)) return;
    if (conn.sid !== undefined) this.#bySid.delete(conn.sid);
    const n = (this.#byDomain.get(conn.domain) ?? 1) - 1;
    this.#byDomain.set(conn.domain, Math.max(0, n));
    this.#hooks.onEvent({ type: 'connection_closed', at: this.#clock.now(), dcid: conn.dcid, destination: conn.domain, delivered: conn.delivered });
    this.#slots.release();
    if (this.#conns.size === 0 && this.#allClosed.length > 0) {
      const waiters = this.#allClosed;
      this.#allClosed = [];
      for (const w of waiters) w();
    }
  }

  #logTls(conn: Conn): void {
    if (conn.tlsLogged || conn.sid === undefined) return;
    conn.tlsLogged = true;
    const f = tlsFactsOf(conn.transport.pool, conn.sid);
    this.#hooks.onEvent({ type: 'tls_established', at: this.#clock.now(), dcid: conn.dcid, destination: conn.domain, protocol: f?.protocol ?? 'unknown', cipher: f?.cipher ?? 'unknown' });
  }

  /** The logger nodemailer's SMTPConnection gets for one of our sockets (bunyan style calls). */
  #connLogger(conn: Conn): Record<string, (...args: unknown[]) => void> {
    const handle = (entry: unknown, message: unknown): void => {
      if (typeof entry !== 'object' || entry === null) return;
      const e = entry as { sid?: unknown; tnx?: unknown; err?: unknown };
      if (conn.sid === undefined && typeof e.sid === 'string') {
        conn.sid = e.sid;
        this.#bySid.set(e.sid, conn);
      }
      if (e.tnx === 'client' && message === 'STARTTLS') conn.tlsPhase = true;
      if (e.tnx === 'smtp' && message === 'Connection upgraded with STARTTLS') {
        conn.tlsPhase = false;
        this.#logTls(conn);
      }
      // Duck-typed: errors from Node internals may come from another realm (Jest's sandbox).
      if (typeof e.err === 'object' && e.err !== null) this.#connError(conn, e.err);
    };
    const fn = (entry: unknown, message: unknown): void => {
      try {
        handle(entry, message);
      } catch (err) {
        this.#log.error(`DCID ${conn.dcid}: log hook failed: ${describeError(err)}`);
      }
    };
    return { trace: fn, debug: fn, info: fn, warn: fn, error: fn, fatal: fn };
  }

  #connError(conn: Conn, err: object): void {
    const extra: { dcid: number; phase?: string } = { dcid: conn.dcid };
    if (conn.tlsPhase) extra.phase = 'starttls';
    Object.assign(err, extra);
    const c = classifyFailure(err);
    const why = errorText(err);
    const code = (err as { code?: unknown; originalCode?: unknown });
    this.#hooks.onEvent({
      type: 'connection_error', at: this.#clock.now(), dcid: conn.dcid, destination: conn.domain, host: conn.host, ip: conn.ip, port: conn.port,
      localAddress: conn.localAddress, reason: c.cls === 'tls' ? c.detail : why,
      details: c.cls === 'tls' ? 'tls' : code.code === 'ETIMEDOUT' ? 'timeout' : connectDetails(typeof code.originalCode === 'string' ? code.originalCode : typeof code.code === 'string' ? code.code : undefined),
    });
  }

  /** The pool's logger: only "Sending message <token> using #cid" matters — the delivery start. */
  #poolLogger(t: Transport): Record<string, (...args: unknown[]) => void> {
    const fn = (entry: unknown): void => {
      try {
        if (typeof entry !== 'object' || entry === null) return;
        const e = entry as { tnx?: unknown; cid?: unknown; messageId?: unknown };
        if (e.tnx !== 'send' || typeof e.messageId !== 'string' || typeof e.cid !== 'number') return;
        const pending = this.#sends.get(e.messageId);
        if (!pending) return;
        this.#deliveryStart(t, e.cid, pending);
      } catch (err) {
        this.#log.error(`pool log hook failed: ${describeError(err)}`);
      }
    };
    return { trace: fn, debug: fn, info: fn, warn: fn, error: fn, fatal: fn };
  }

  #deliveryStart(t: Transport, cid: number, pending: PendingSend): void {
    const sid = sidOfResource(t.pool, cid);
    const conn = sid === undefined ? undefined : this.#bySid.get(sid);
    if (!conn || sid === undefined) return;
    pending.dcid = conn.dcid;
    if (isPlaintext(t.pool, sid) === true) {
      // requireTLS makes this impossible; if it ever happens, the copy is not sent in the clear.
      this.#log.error(`DCID ${conn.dcid} MID ${pending.copy.mid}: connection is not encrypted; delivery stopped`);
      pending.guard.abort(new Error('plaintext connection'));
      return;
    }
    this.#logTls(conn);
    conn.delivered += 1;
    this.#hooks.onDeliveryStart(pending.copy, conn.dcid);
  }
}

/** The gateway's `details:` word for a socket error code. */
function connectDetails(code: string | undefined): string {
  if (code === 'ECONNREFUSED') return 'refused';
  if (code === 'ECONNRESET' || code === 'EPIPE') return 'reset';
  if (code === 'ETIMEDOUT') return 'timeout';
  if (code === 'EHOSTUNREACH' || code === 'ENETUNREACH') return 'unreachable';
  return 'error';
}
