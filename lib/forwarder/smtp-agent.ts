/**
 * The SMTP delivery agent (DeliveryAgent): *how* a copy reaches its intake. Routes it (relay, or MX in
 * preference order, implicit MX; NXDOMAIN/null MX hard), hands it to the pool of its intake domain
 * (lib/smtp connections, STARTTLS required, TLS ≥ 1.2, certificate checked against the MX name), keeps
 * connections open as the queue's `demand` says within `maxConnections`, and answers every attempt
 * with a classified DeliveryResult; `deliver` never rejects. Imports lib/smtp, util and this folder only.
 */
import type { Clock } from '../util/clock';
import { describeError } from '../util/errors';
import type { Logger } from '../util/logger';
import { SecureContexts, TlsSessionCache } from '../smtp/tls-sessions';
import type { AgentStats, DeliveryAgent, DeliveryContext, DeliveryResult, QueuedCopy } from './delivery-agent';
import type { ConnectionEvent, DnsEvent } from './events';
import { IntakePool, type PoolHost } from './intake-pool';
import { DnsFailure, Router, createResolver, type DnsResolverLike } from './route';
import { abortedResult, classifyDns, dnsWord, localResult } from './smtp-outcome';
import { copyFacts, domainOf, journalBytes, type ForwarderOptions } from './types';

export interface SmtpAgentDeps {
  clock: Clock;
  /** Lines about the agent itself (not about copies: those are events). */
  logger?: Logger;
  /** Tests: a resolver instead of dns.promises.Resolver on options.dnsServers. */
  resolver?: DnsResolverLike;
  /** The next DCID (the gateway's delivery connection id); default a counter from 1. */
  nextDcid?: () => number;
  onEvent?: (e: ConnectionEvent | DnsEvent) => void;
  /** A connection starts a copy's transaction. */
  onDeliveryStart?: (copy: QueuedCopy, dcid: number) => void;
  /** Order of equal-preference MX hosts; default Math.random. */
  random?: () => number;
}

/** Everything a pool's connections are built from: a change retires the pools. */
function connectionSignature(o: ForwarderOptions): string {
  return JSON.stringify([o.relay && [o.relay.host, o.relay.port], (o.tlsCa ?? []).map((b) => b.toString('base64')), o.connectTimeout, o.commandTimeout,
    o.heloName, o.dnsServers, o.tlsServername, o.mxPort]);
}

/** The DnsEvent fields of a failed lookup: the name and record type queried, in the gateway's words. */
function dnsEventFields(err: DnsFailure, domain: string): Pick<DnsEvent, 'domain' | 'rrtype' | 'error'> {
  return { domain: err.lookup?.name ?? domain, rrtype: err.lookup?.rrtype ?? 'MX', error: dnsWord(err) };
}

export class SmtpAgent implements DeliveryAgent<ForwarderOptions> {
  #o: ForwarderOptions;
  readonly #clock: Clock;
  readonly #deps: SmtpAgentDeps;
  #router: Router;
  readonly #pools = new Map<string, IntakePool>();
  /** Pools replaced by a reconfigure, until their last connection is gone. */
  readonly #retired = new Set<IntakePool>();
  readonly #contexts = new SecureContexts();
  readonly #tlsSessions = new TlsSessionCache();
  readonly #demand = new Map<string, number>();
  #dcid = 0;
  #closed = false;
  #whenEmpty: (() => void)[] = [];
  readonly #poolHost: PoolHost;

  constructor(options: ForwarderOptions, deps: SmtpAgentDeps) {
    this.#o = { ...options };
    this.#clock = deps.clock;
    this.#deps = deps;
    this.#router = this.#makeRouter(options);
    const agent = this;
    this.#poolHost = {
      get options() { return agent.#o; },
      clock: deps.clock,
      contexts: this.#contexts,
      tlsSessions: this.#tlsSessions,
      nextDcid: () => (deps.nextDcid ? deps.nextDcid() : ++this.#dcid),
      emit: (e) => this.#emit(e),
      onDeliveryStart: (copy, dcid) => {
        try {
          deps.onDeliveryStart?.(copy, dcid);
        } catch (err) {
          deps.logger?.error(`delivery start observer failed: ${describeError(err)}`);
        }
      },
      mayOpen: (pool) => this.#mayOpen(pool),
      released: () => this.#released(),
    };
  }

  #makeRouter(o: ForwarderOptions): Router {
    const resolver = this.#deps.resolver ?? createResolver(o.dnsServers, o.connectTimeout);
    return new Router(resolver, this.#clock, { relay: o.relay, mxPort: o.mxPort }, this.#deps.random);
  }

  async deliver(copy: QueuedCopy, ctx: DeliveryContext): Promise<DeliveryResult> {
    try {
      return await this.#deliver(copy, ctx);
    } catch (err) {
      // Never reject: anything unforeseen is our own failure, hard.
      return localResult(`internal error: ${describeError(err)}`);
    }
  }

  async #deliver(copy: QueuedCopy, ctx: DeliveryContext): Promise<DeliveryResult> {
    if (this.#closed) return localResult('the forwarder is closing');
    const domain = domainOf(copy.intakeAddress);
    if (!domain || copy.intakeAddress.indexOf('@') < 1 || /[\s<>]/.test(copy.intakeAddress)) {
      return localResult(`bad intake address ${JSON.stringify(copy.intakeAddress)}`);
    }
    if (ctx.signal.aborted) return abortedResult('aborted before routing');
    const routed = await this.#route(domain, ctx.signal, copy);
    if ('outcome' in routed) return routed;
    // close() may have come during the lookup: its pools take no copies any more (one would wait forever).
    if (this.#closed) return localResult('the forwarder is closing');
    const pool = this.#poolFor(domain);
    pool.setRoute(routed.route);
    return new Promise<DeliveryResult>((resolve) => {
      let done = false;
      pool.enqueue({
        copy,
        signal: ctx.signal,
        resolve: (r) => {
          if (done) return;
          done = true;
          resolve(r);
        },
      });
    });
  }

  /** The route, or the result of a failed lookup (with its DNS event); an abort wins over a slow lookup. */
  async #route(domain: string, signal: AbortSignal, copy?: QueuedCopy): Promise<{ route: Awaited<ReturnType<Router['route']>> } | DeliveryResult> {
    let onAbort: (() => void) | undefined;
    const aborted = new Promise<DeliveryResult>((resolve) => {
      onAbort = () => resolve(abortedResult('aborted during the route lookup', 'route'));
      signal.addEventListener('abort', onAbort, { once: true });
    });
    try {
      return await Promise.race([this.#router.route(domain).then((route) => ({ route })), aborted]);
    } catch (err) {
      if (!(err instanceof DnsFailure)) return localResult(`route lookup failed: ${describeError(err)}`);
      // One event per lookup: the copy's own lookup reports it; a lookup for the demand alone does not
      // (it shares the copy's query in flight, and a copy always follows the demand).
      if (copy) this.#emit({ type: 'dns_error', at: this.#clock.now(), ...dnsEventFields(err, domain), hard: err.hard, copy: copyFacts(copy, copy.mid, journalBytes(copy.raw)) });
      return classifyDns(err);
    } finally {
      if (onAbort) signal.removeEventListener('abort', onAbort);
    }
  }

  demand(intakeAddress: string, connections: number): void {
    const domain = domainOf(intakeAddress);
    if (!domain || this.#closed) return;
    const n = Math.max(0, Math.floor(connections));
    this.#demand.set(domain, n);
    const existing = this.#pools.get(domain);
    if (n === 0) {
      existing?.setDemand(0);
      return;
    }
    const pool = this.#poolFor(domain);
    const generation = pool;
    // Connections need a route; the lookup's failure is only an event here (no copy waits on it).
    void this.#route(domain, new AbortController().signal).then((r) => {
      if ('outcome' in r || this.#pools.get(domain) !== generation) return;
      pool.setRoute(r.route);
      pool.setDemand(this.#demand.get(domain) ?? 0);
    });
  }

  /** Connections open or opening, all pools (the count `stats` reports, without building its map). */
  #connectionCount(): number {
    let n = 0;
    for (const p of this.#pools.values()) n += p.size;
    for (const p of this.#retired) n += p.size;
    return n;
  }

  stats(): AgentStats {
    const byDomain = new Map<string, number>();
    let total = 0;
    for (const p of [...this.#pools.values(), ...this.#retired]) {
      if (p.size === 0) continue;
      byDomain.set(p.domain, (byDomain.get(p.domain) ?? 0) + p.size);
      total += p.size;
    }
    return { connections: total, byDomain };
  }

  reconfigure(options: ForwarderOptions): void {
    const changed = connectionSignature(options) !== connectionSignature(this.#o);
    const dnsChanged = JSON.stringify(options.dnsServers) !== JSON.stringify(this.#o.dnsServers) || options.connectTimeout !== this.#o.connectTimeout;
    this.#o = { ...options };
    if (dnsChanged && !this.#deps.resolver) this.#router = this.#makeRouter(options);
    else this.#router.reconfigure({ relay: options.relay, mxPort: options.mxPort });
    if (changed) {
      this.#tlsSessions.clear();
      const old = [...this.#pools.values()];
      this.#pools.clear();
      for (const p of old) {
        this.#retired.add(p);
        const waiting = p.retire();
        if (waiting.length === 0) continue;
        // Copies not yet on a connection go out under the new settings (a fresh route lookup first).
        for (const w of waiting) {
          void this.#route(p.domain, w.signal, w.copy).then((r) => {
            if ('outcome' in r || this.#closed) {
              w.resolve('outcome' in r ? r : abortedResult('the forwarder is closing'));
              return;
            }
            const pool = this.#poolFor(p.domain);
            pool.setRoute(r.route);
            pool.enqueue(w);
          });
        }
      }
    }
    this.#released();
  }

  /** Idle connections QUIT, copies on the way finish (up to `waitMs`, then everything is cut). */
  async close(waitMs = 3000): Promise<void> {
    this.#closed = true;
    const all = (): IntakePool[] => [...this.#pools.values(), ...this.#retired];
    for (const p of all()) for (const w of p.retire()) w.resolve(abortedResult('the forwarder is closing'));
    if (this.#connectionCount() === 0) return;
    await new Promise<void>((resolve) => {
      const timer = this.#clock.setTimer(waitMs, () => {
        for (const p of all()) p.abortAll('the forwarder is closing');
      });
      this.#whenEmpty.push(() => {
        timer.cancel();
        resolve();
      });
    });
  }

  #poolFor(domain: string): IntakePool {
    let p = this.#pools.get(domain);
    if (!p) {
      p = new IntakePool(domain, this.#poolHost);
      this.#pools.set(domain, p);
    }
    return p;
  }

  #mayOpen(pool: IntakePool): boolean {
    if (this.#closed) return false;
    if (this.#connectionCount() < this.#o.maxConnections) return true;
    // At the cap: an idle connection elsewhere gives its slot up (it closes; `released` pumps again).
    for (const p of [...this.#retired, ...this.#pools.values()]) if (p !== pool && p.closeIdle()) break;
    return false;
  }

  #released(): void {
    for (const p of [...this.#retired]) if (p.size === 0 && !p.busy) this.#retired.delete(p);
    if (!this.#closed) for (const p of this.#pools.values()) p.pump();
    if (this.#connectionCount() === 0 && this.#whenEmpty.length > 0) {
      for (const w of this.#whenEmpty.splice(0)) w();
    }
  }

  #emit(e: ConnectionEvent | DnsEvent): void {
    try {
      this.#deps.onEvent?.(e);
    } catch (err) {
      this.#deps.logger?.error(`forwarder event observer failed: ${describeError(err)}`);
    }
  }
}
