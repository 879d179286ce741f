/**
 * Envelope address matching against the gateway's address patterns (`user@domain`, `@domain`,
 * `@.domain`, `user@`), case-insensitive. The patterns come parsed in the Config (lib/config parses
 * them once, at load time); imports config (types) only.
 */
import type { AddressPattern } from '../config';

export interface SplitAddress {
  local: string;
  /** Lower-case, without a trailing dot; '' when the address has no `@`. */
  domain: string;
}

/** Split at the last `@` and lower-case both parts. */
export function splitAddress(address: string): SplitAddress {
  const a = address.toLowerCase();
  const at = a.lastIndexOf('@');
  if (at < 0) return { local: a, domain: '' };
  return { local: a.slice(0, at), domain: a.slice(at + 1).replace(/\.$/, '') };
}

export function matchesPattern(address: SplitAddress, p: AddressPattern): boolean {
  switch (p.kind) {
    case 'exact': return address.local === p.local && address.domain === p.domain;
    case 'domain': return address.domain === p.domain;
    case 'subdomain': return address.domain.endsWith(`.${p.domain}`);
    case 'local': return address.local === p.local;
  }
}

/** True when `address` matches any pattern; the null sender ('') matches none. */
export function matchesAny(address: string, patterns: readonly AddressPattern[]): boolean {
  return matchesAnySplit(splitEnvelopeAddress(address), patterns);
}

/** splitAddress, with the null sender ('') as undefined: it matches no pattern. */
export function splitEnvelopeAddress(address: string): SplitAddress | undefined {
  return address === '' ? undefined : splitAddress(address);
}

/** matchesAny for an address split once (per message or recipient, not per policy); undefined = the null sender. */
export function matchesAnySplit(address: SplitAddress | undefined, patterns: readonly AddressPattern[]): boolean {
  return address !== undefined && patterns.some((p) => matchesPattern(address, p));
}
