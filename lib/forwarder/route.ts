/**
 * Where a copy goes: the relay if one is set, else the MX hosts of the intake domain (preference
 * order, equal preferences shuffled), the domain itself when it has no MX (RFC 5321 implicit MX),
 * and hard failures for NXDOMAIN and null MX (RFC 7505). Every name, the hosts' A/AAAA included,
 * is resolved through one injected resolver (dns.promises.Resolver in production, a fake in unit
 * tests, a loopback DNS server in integration tests) — never the system's getaddrinfo.
 * Imports util and this folder only.
 */
import * as dns from 'node:dns';
import * as net from 'node:net';
import type { Clock } from '../util/clock';
import { TdcError } from '../util/errors';
import type { RelaySpec } from '../util/net-address';

export interface DnsResolverLike {
  resolveMx(name: string): Promise<{ exchange: string; priority: number }[]>;
  resolve4(name: string): Promise<string[]>;
  resolve6(name: string): Promise<string[]>;
}

/** The query that failed: the name looked up and its record type (the gateway names both). */
export interface DnsLookup {
  name: string;
  rrtype: 'MX' | 'A' | 'AAAA';
}

/** A DNS step failed: `hard` ones (NXDOMAIN, null MX, no address at all) are not retried. */
export class DnsFailure extends TdcError {
  readonly hard: boolean;
  readonly dnsCode: string | undefined;
  /** Which query failed; absent only where no query was made (a bad address literal). */
  readonly lookup: DnsLookup | undefined;
  constructor(message: string, hard: boolean, dnsCode?: string, lookup?: DnsLookup) {
    super('EDNS', message);
    this.hard = hard;
    this.dnsCode = dnsCode;
    this.lookup = lookup;
  }
}

export interface RouteHost {
  /** Host name (or IP literal) the certificate is checked against. */
  name: string;
  port: number;
  /** IPv4 first, then IPv6; empty when the lookup failed (see `failure`). */
  addresses: string[];
  failure?: DnsFailure;
}

export interface Route {
  domain: string;
  kind: 'relay' | 'mx' | 'implicit' | 'literal';
  hosts: RouteHost[];
}

export type { RelaySpec };

/** Equal-preference MX hosts in random order, lower preference first. */
export function orderMx(records: { exchange: string; priority: number }[], random: () => number): string[] {
  const keyed = records.map((r) => ({ r, k: random() }));
  keyed.sort((a, b) => a.r.priority - b.r.priority || a.k - b.k);
  return keyed.map((x) => x.r.exchange);
}

function dnsCode(err: unknown): string | undefined {
  const c = typeof err === 'object' && err !== null ? (err as { code?: unknown }).code : undefined;
  return typeof c === 'string' ? c : undefined;
}

/** NXDOMAIN or NODATA: a definite "nothing there", as opposed to a timeout or SERVFAIL. */
function isDefinite(code: string | undefined): boolean {
  return code === 'ENOTFOUND' || code === 'ENODATA';
}

const ROUTE_CACHE_MS = 30_000;

export interface RouterOptions {
  /** As the config loader parsed `relay` (never parsed here); unset = MX of the intake domain. */
  relay?: RelaySpec | undefined;
  mxPort?: number;
}

/** Resolves routes, caching good ones for 30 s and sharing lookups already in flight. */
export class Router {
  readonly #resolver: DnsResolverLike;
  readonly #clock: Clock;
  readonly #random: () => number;
  #opts: RouterOptions;
  #cache = new Map<string, { until: number; route: Route }>();
  #pending = new Map<string, Promise<Route>>();

  constructor(resolver: DnsResolverLike, clock: Clock, opts: RouterOptions, random: () => number = Math.random) {
    this.#resolver = resolver;
    this.#clock = clock;
    this.#opts = { ...opts };
    this.#random = random;
  }

  reconfigure(opts: RouterOptions): void {
    this.#opts = { ...opts };
    this.#cache.clear();
    this.#pending.clear();
  }

  /** The route for an intake domain; rejects with DnsFailure when there is none. */
  route(domain: string): Promise<Route> {
    const key = domain.toLowerCase();
    const hit = this.#cache.get(key);
    if (hit && hit.until > this.#clock.now()) return Promise.resolve(hit.route);
    const pending = this.#pending.get(key);
    if (pending) return pending;
    const opts = this.#opts;
    const p = this.#lookup(key, opts).then(
      (route) => {
        if (this.#pending.get(key) === p) {
          this.#pending.delete(key);
          if (route.hosts.some((h) => h.addresses.length > 0)) {
            this.#cache.set(key, { until: this.#clock.now() + ROUTE_CACHE_MS, route });
          }
        }
        return route;
      },
      (err: unknown) => {
        if (this.#pending.get(key) === p) this.#pending.delete(key);
        throw err;
      },
    );
    this.#pending.set(key, p);
    return p;
  }

  async #lookup(domain: string, opts: RouterOptions): Promise<Route> {
    const mxPort = opts.mxPort ?? 25;
    if (opts.relay) return this.#withAddresses(domain, 'relay', [opts.relay.host], opts.relay.port);
    if (domain === '') throw new DnsFailure('intake address has no domain', true);
    const literal = /^\[(.+)\]$/.exec(domain);
    if (literal) {
      if (net.isIP(literal[1]!) === 0) throw new DnsFailure(`bad address literal ${domain}`, true);
      return { domain, kind: 'literal', hosts: [{ name: literal[1]!, port: mxPort, addresses: [literal[1]!] }] };
    }
    let records: { exchange: string; priority: number }[];
    try {
      records = await this.#resolver.resolveMx(domain);
    } catch (err) {
      const code = dnsCode(err);
      if (code === 'ENOTFOUND') throw new DnsFailure(`MX lookup for ${domain}: NXDOMAIN`, true, code, { name: domain, rrtype: 'MX' });
      if (code !== 'ENODATA') throw new DnsFailure(`MX lookup for ${domain} failed: ${code ?? String(err)}`, false, code, { name: domain, rrtype: 'MX' });
      records = [];
    }
    const named = records.filter((r) => r.exchange !== '' && r.exchange !== '.');
    if (records.length > 0 && named.length === 0) {
      throw new DnsFailure(`${domain} has a null MX (accepts no mail)`, true, 'NULLMX', { name: domain, rrtype: 'MX' });
    }
    if (named.length === 0) return this.#withAddresses(domain, 'implicit', [domain], mxPort);
    return this.#withAddresses(domain, 'mx', orderMx(named, this.#random), mxPort);
  }

  async #withAddresses(domain: string, kind: Route['kind'], names: string[], port: number): Promise<Route> {
    const hosts = await Promise.all(names.map((name) => this.#host(name.replace(/\.$/, ''), port)));
    if (hosts.every((h) => h.addresses.length === 0)) {
      const failures = hosts.map((h) => h.failure!);
      const hard = failures.every((f) => f.hard);
      throw new DnsFailure(failures.map((f) => f.message).join('; '), hard, failures[0]?.dnsCode, failures[0]?.lookup);
    }
    return { domain, kind, hosts };
  }

  async #host(name: string, port: number): Promise<RouteHost> {
    if (net.isIP(name) !== 0) return { name, port, addresses: [name] };
    const [v4, v6] = await Promise.allSettled([this.#resolver.resolve4(name), this.#resolver.resolve6(name)]);
    const addresses = [
      ...(v4.status === 'fulfilled' ? v4.value : []),
      ...(v6.status === 'fulfilled' ? v6.value : []),
    ];
    if (addresses.length > 0) return { name, port, addresses };
    const codes = [v4, v6].map((r) => (r.status === 'rejected' ? dnsCode(r.reason) : 'ENODATA'));
    const hard = codes.every(isDefinite);
    const what = codes.includes('ENOTFOUND') ? 'NXDOMAIN' : hard ? 'no A/AAAA record' : `lookup failed (${codes.join(', ')})`;
    return { name, port, addresses: [], failure: new DnsFailure(`address of ${name}: ${what}`, hard, codes.find((c) => c !== 'ENODATA') ?? 'ENODATA', { name, rrtype: 'A' }) };
  }
}

/** dns.promises.Resolver on `servers` (or the system's), one try of `timeoutMs` per query. */
export function createResolver(servers: string[] | undefined, timeoutMs: number): DnsResolverLike {
  const r = new dns.promises.Resolver({ timeout: Math.max(1, Math.round(timeoutMs)), tries: 1 });
  if (servers && servers.length > 0) r.setServers(servers);
  return r;
}
