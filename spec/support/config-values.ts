/**
 * Config values for specs that build or compare a Config by hand: networks and address patterns
 * parsed with the loader's own parsers (a bad one throws: it is a mistake in the spec).
 */
import { parseAddressPattern, parseNetwork, type AddressPattern, type Network } from '../../lib/config';

export function networks(...texts: string[]): Network[] {
  return texts.map((t) => {
    const r = parseNetwork(t);
    if (!r.ok) throw new Error(`spec: ${JSON.stringify(t)} is not a network: ${r.expected}`);
    return r.value;
  });
}

export function patterns(...texts: string[]): AddressPattern[] {
  return texts.map((t) => {
    const r = parseAddressPattern(t);
    if (!r.ok) throw new Error(`spec: ${JSON.stringify(t)} is not an address pattern: ${r.expected}`);
    return r.value;
  });
}
