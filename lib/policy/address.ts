/**
 * Envelope address matching against the gateway's address patterns (`user@domain`, `@domain`,
 * `@.domain`, `user@`), case-insensitive. Patterns are parsed by lib/config; imports config (values) only.
 */
import { parseAddressPattern, type AddressPattern } from '../config';

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

/** Parse config pattern strings (already validated by the config parser; invalid ones never match). */
export function compilePatterns(patterns: readonly string[]): AddressPattern[] {
  const out: AddressPattern[] = [];
  for (const text of patterns) {
    const r = parseAddressPattern(text);
    if (r.ok) out.push(r.value);
  }
  return out;
}

/** True when `address` matches any pattern; the null sender ('') matches none. */
export function matchesAny(address: string, patterns: readonly AddressPattern[]): boolean {
  if (address === '') return false;
  const split = splitAddress(address);
  return patterns.some((p) => matchesPattern(split, p));
}
