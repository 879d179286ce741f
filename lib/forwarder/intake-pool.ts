/**
 * The connections to one intake domain (a pool resource per connection, each bound to the MX host it
 * reached): copies wait here for a ready connection; connections open for waiting copies and for the
 * queue's demand, walk the route's hosts on connection failures (next address, next MX), carry at
 * most `messagesPerConnection` copies, and QUIT about 1 s after they fall idle with no demand.
 * Imports lib/smtp, util and this folder only.
 */
import type { Clock, TimerHandle } from '../util/clock';
import { SmtpConnection } from '../smtp/connection';
import type { SmtpFailure, TransactionResult } from '../smtp/client-session';
import { replyText } from '../smtp/reply-parser';
import type { SecureContexts, TlsSessionCache } from '../smtp/tls-sessions';
import type { DeliveryResult, QueuedCopy } from './delivery-agent';
import type { ConnectionEvent } from './events';
import { bodyTypeOf } from './copy-body';
import type { Route } from './route';
import { abortedResult, classifySmtp, deliveredResult, triesNextHost } from './smtp-outcome';
import { journalBytes, type ForwarderOptions } from './types';

/** Idle connections QUIT this long after the last copy when the queue wants none kept: "close when the queue drains". */
export const IDLE_CLOSE_MS = 1000;

/** A copy waiting for (or riding on) a connection. */
export interface Waiter {
  copy: QueuedCopy;
  signal: AbortSignal;
  resolve(r: DeliveryResult): void;
  /** The connection carrying it, once started. */
  on?: PoolConn;
}

interface Target { host: string; ip: string; port: number }

interface PoolConn {
  dcid: number;
  target: Target;
  conn: SmtpConnection;
  /** settling: a transaction ended, the session is not ready yet (RSET under way, or closing). */
  state: 'opening' | 'ready' | 'busy' | 'settling' | 'closing';
  opened: boolean;
  sent: number;
  current?: Waiter;
  /** The copy this connection was opened for: its attempt fails if the connection cannot be made. */
  forWaiter?: Waiter;
  idle?: TimerHandle;
  /** Hosts still to try if this one fails before it is ready. */
  rest: Target[];
}

/** What a pool needs from its agent. */
export interface PoolHost {
  readonly options: ForwarderOptions;
  readonly clock: Clock;
  readonly contexts: SecureContexts;
  readonly tlsSessions: TlsSessionCache;
  nextDcid(): number;
  emit(e: ConnectionEvent): void;
  onDeliveryStart(copy: QueuedCopy, dcid: number): void;
  /** May one more connection open (the global max_connections)? May close another pool's idle one. */
  mayOpen(pool: IntakePool): boolean;
  /** A connection of this pool ended (a slot is free for others). */
  released(): void;
}

export class IntakePool {
  readonly domain: string;
  readonly #host: PoolHost;
  #route: Route | undefined;
  #demand = 0;
  readonly #waiting: Waiter[] = [];
  readonly #conns = new Set<PoolConn>();
  /**
   * Whether the intake answers: 'fresh' (never tried: the demand opens one connection, the rest once
   * it is ready), 'up' (a connection became ready: the demand opens all it wants), 'failed' (the last
   * connection failed before it was ready: connections open only for waiting copies, one each, until
   * one is ready again). So a dead intake costs one connection per copy's attempt, never
   * min_connections of them, and never a reconnect loop for the demand alone.
   */
  #reach: 'fresh' | 'up' | 'failed' = 'fresh';
  #retired = false;

  constructor(domain: string, host: PoolHost) {
    this.domain = domain;
    this.#host = host;
  }

  get size(): number {
    return this.#conns.size;
  }

  get busy(): boolean {
    return this.#waiting.length > 0 || [...this.#conns].some((c) => c.state === 'busy' || c.state === 'opening');
  }

  setRoute(route: Route): void {
    this.#route = route;
  }

  setDemand(n: number): void {
    this.#demand = Math.max(0, n);
    if (this.#demand === 0 && this.#waiting.length === 0 && this.#reach !== 'up') {
      // The queue drained before the intake ever answered: a connection still opening is for nobody (a
      // silent intake would hold it until the command timeout). Where it answers, they close when idle.
      for (const c of this.#conns) if (c.state === 'opening') c.conn.abort('the queue drained');
    }
    this.pump();
  }

  /**
   * Stop taking copies: idle connections QUIT now, busy ones after their copy. Returns the copies
   * still waiting (the caller hands them to the pool that replaces this one, or ends them).
   */
  retire(): Waiter[] {
    this.#retired = true;
    this.#demand = 0;
    for (const c of this.#conns) if (c.state === 'ready') this.#quit(c);
    return this.#waiting.splice(0);
  }

  /** Hand a copy over; `w.resolve` is called exactly once. */
  enqueue(w: Waiter): void {
    if (w.signal.aborted) {
      w.resolve(abortedResult('aborted before a connection took it'));
      return;
    }
    this.#waiting.push(w);
    w.signal.addEventListener('abort', () => this.#abort(w), { once: true });
    this.pump();
  }

  /** Close one idle connection (another pool needs the slot); true if there was one. */
  closeIdle(): boolean {
    for (const c of this.#conns) {
      if (c.state === 'ready') {
        this.#quit(c);
        return true;
      }
    }
    return false;
  }

  /** Give waiting copies to ready connections, open what is needed, arm idle timers. */
  pump(): void {
    for (const c of this.#conns) {
      if (this.#waiting.length === 0) break;
      if (c.state === 'ready') this.#startNext(c);
    }
    if (this.#route && !this.#retired) {
      const opening = [...this.#conns].filter((c) => c.state === 'opening');
      const unbound = this.#waiting.filter((w) => !opening.some((c) => c.forWaiter === w));
      // Unbound openings and connections finishing a transaction (RSET under way) will take a copy soon.
      let spare = opening.filter((c) => c.forWaiter === undefined).length + [...this.#conns].filter((c) => c.state === 'settling').length;
      for (const w of unbound) {
        if (spare > 0) { spare -= 1; continue; }
        if (!this.#host.mayOpen(this)) break;
        this.#open(w);
      }
      while (this.#conns.size < this.#demand && (this.#reach === 'up' || (this.#reach === 'fresh' && this.#conns.size === 0)) && this.#host.mayOpen(this)) {
        this.#open(undefined);
      }
    }
    for (const c of this.#conns) if (c.state === 'ready') this.#idleCheck(c);
  }

  /** End every connection now (copies on them fail as aborted); waiting copies too. */
  abortAll(reason: string): void {
    for (const w of this.#waiting.splice(0)) w.resolve(abortedResult(reason));
    for (const c of this.#conns) c.conn.abort(reason);
  }

  #targets(): Target[] {
    const out: Target[] = [];
    for (const h of this.#route?.hosts ?? []) for (const ip of h.addresses) out.push({ host: h.name, ip, port: h.port });
    return out;
  }

  #open(forWaiter: Waiter | undefined, rest?: Target[], previous?: PoolConn): void {
    const targets = rest ?? this.#targets();
    const target = targets[0];
    if (target === undefined) return;
    const o = this.#host.options;
    const dcid = this.#host.nextDcid();
    const pc = { dcid, target, state: 'opening', opened: false, sent: 0, rest: targets.slice(1) } as PoolConn;
    if (forWaiter) pc.forWaiter = forWaiter;
    else if (previous?.forWaiter) pc.forWaiter = previous.forWaiter;
    this.#conns.add(pc);
    const at = (): number => this.#host.clock.now();
    pc.conn = new SmtpConnection({
      host: target.host, ip: target.ip, port: target.port, heloName: o.heloName,
      secureContext: this.#host.contexts.get(o.tlsCa),
      ...(o.tlsServername !== undefined ? { servername: o.tlsServername } : {}),
      tlsSessions: this.#host.tlsSessions, clock: this.#host.clock,
      connectTimeout: o.connectTimeout, commandTimeout: o.commandTimeout,
    }, {
      onConnected: (localAddress) => {
        pc.opened = true;
        this.#host.emit({ type: 'connection_opened', at: at(), dcid, destination: this.domain, host: target.host, ip: target.ip, port: target.port, localAddress });
      },
      onTls: (t) => this.#host.emit({ type: 'tls_established', at: at(), dcid, destination: this.domain, protocol: t.protocol, cipher: t.cipher, resumed: t.resumed }),
      onReady: () => this.#ready(pc),
      onTransactionDone: (r) => this.#done(pc, r),
      onClosed: (f) => this.#closed(pc, f),
    });
  }

  #ready(pc: PoolConn): void {
    pc.state = 'ready';
    pc.forWaiter = undefined;
    pc.rest = [];
    this.#reach = 'up';
    if (this.#retired || pc.sent >= this.#host.options.messagesPerConnection) {
      this.#quit(pc);
      this.pump();
      return;
    }
    this.#startNext(pc);
    // The intake answers: open the rest of the demand now.
    this.pump();
  }

  #startNext(pc: PoolConn): void {
    const w = this.#waiting.shift();
    if (!w) return;
    pc.idle?.cancel();
    pc.idle = undefined;
    pc.state = 'busy';
    pc.current = w;
    w.on = pc;
    pc.sent += 1;
    this.#host.onDeliveryStart(w.copy, pc.dcid);
    pc.conn.start({ recipient: w.copy.intakeAddress, raw: w.copy.raw, bytes: journalBytes(w.copy.raw), body: bodyTypeOf(w.copy) });
  }

  #done(pc: PoolConn, r: TransactionResult): void {
    const w = pc.current;
    pc.current = undefined;
    if (pc.state === 'busy') pc.state = 'settling';
    if (!w) return;
    w.on = undefined;
    w.resolve(r.ok ? deliveredResult(r.reply, pc.dcid) : classifySmtp(r.failure, pc.dcid));
    // The session says 'ready' itself (now, or after RSET); a closing one says nothing more.
  }

  #closed(pc: PoolConn, f: SmtpFailure | undefined): void {
    this.#conns.delete(pc);
    pc.idle?.cancel();
    const o = { at: this.#host.clock.now(), dcid: pc.dcid, destination: this.domain };
    const t = pc.target;
    const reason = f ? connectionErrorReason(f) : undefined;
    if (f && reason !== undefined) {
      this.#host.emit({
        ...o, type: 'connection_error', host: t.host, ip: t.ip, port: t.port, localAddress: pc.conn.localAddress,
        details: detailsWord(f), reason,
      });
    }
    if (pc.opened) this.#host.emit({ ...o, type: 'connection_closed', delivered: pc.sent });
    if (pc.current) {
      // The session reports a copy in flight before it closes; this is only a safety net.
      const w = pc.current;
      pc.current = undefined;
      w.resolve(classifySmtp(f ?? { kind: 'network', phase: 'message', message: 'connection closed' }, pc.dcid));
    }
    const beforeReady = pc.state === 'opening';
    // An opening we aborted ourselves (its copy left the queue) costs no other copy an attempt.
    if (beforeReady && f && f.kind !== 'aborted') {
      if (triesNextHost(f) && pc.rest.length > 0 && !this.#retired) {
        this.#open(undefined, pc.rest, pc);
        this.#host.released();
        return;
      }
      // Nothing more to try: this connection's failure is one waiting copy's attempt.
      const w = pc.forWaiter && this.#waiting.includes(pc.forWaiter) ? pc.forWaiter : this.#unboundWaiter();
      if (w) {
        this.#waiting.splice(this.#waiting.indexOf(w), 1);
        w.resolve(classifySmtp(f, pc.dcid));
      }
      this.#reach = 'failed';
    }
    this.#host.released();
    this.pump();
  }

  /** The oldest waiting copy no other opening connection was opened for. */
  #unboundWaiter(): Waiter | undefined {
    const bound = new Set([...this.#conns].map((c) => c.forWaiter));
    return this.#waiting.find((w) => !bound.has(w));
  }

  #idleCheck(pc: PoolConn): void {
    if (pc.state !== 'ready' || this.#waiting.length > 0) return;
    const keep = [...this.#conns].filter((c) => c.state !== 'closing').length <= this.#demand;
    if (keep) {
      pc.idle?.cancel();
      pc.idle = undefined;
      return;
    }
    pc.idle ??= this.#host.clock.setTimer(IDLE_CLOSE_MS, () => {
      pc.idle = undefined;
      if (pc.state === 'ready') this.#quit(pc);
    });
  }

  #quit(pc: PoolConn): void {
    pc.idle?.cancel();
    pc.idle = undefined;
    pc.state = 'closing';
    pc.conn.quit();
  }

  #abort(w: Waiter): void {
    const i = this.#waiting.indexOf(w);
    if (i >= 0) {
      this.#waiting.splice(i, 1);
      w.resolve(abortedResult('aborted while waiting for a connection'));
      // A connection still opening for this copy alone is not needed any more (a silent intake would
      // otherwise hold it until the command timeout); one that other copies wait for is kept for them.
      for (const c of this.#conns) {
        if (c.forWaiter !== w) continue;
        c.forWaiter = undefined;
        if (this.#waiting.length === 0) c.conn.abort(`copy ${w.copy.id} left the queue`);
      }
      return;
    }
    // On a connection: that transaction cannot be taken back; the connection ends, the copy fails as aborted.
    if (w.on) w.on.conn.abort(`copy ${w.copy.id} aborted`);
  }
}

/** A refused STARTTLS (not a 421) is a TLS failure of the connection, as a failed handshake is. */
function refusedStartTls(f: SmtpFailure): boolean {
  return f.kind === 'reply' && f.phase === 'starttls' && f.reply.code !== 421;
}

/** The `reason:` of the connection's `Connection Error` line, or undefined when the connection itself did not fail. */
function connectionErrorReason(f: SmtpFailure): string | undefined {
  switch (f.kind) {
    case 'network': case 'timeout': return f.message;
    case 'tls': return f.code !== undefined ? `${f.code}: ${f.message}` : f.message;
    case 'protocol': return f.error.message;
    case 'reply': return refusedStartTls(f) ? `STARTTLS refused: ${replyText(f.reply)}` : undefined;
    default: return undefined;
  }
}

/** The gateway's `details:` word for a connection error. */
function detailsWord(f: SmtpFailure): string {
  if (f.kind === 'timeout') return 'timeout';
  if (f.kind === 'tls' || refusedStartTls(f)) return 'tls';
  if (f.kind === 'protocol') return 'protocol';
  if (f.kind === 'network') {
    if (f.code === 'ECONNREFUSED') return 'refused';
    if (f.code === 'ECONNRESET' || f.code === 'EPIPE') return 'reset';
    if (f.code === 'EHOSTUNREACH' || f.code === 'ENETUNREACH') return 'unreachable';
    return 'closed';
  }
  return 'error';
}
