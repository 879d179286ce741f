/**
 * Config values for specs that build or compare a Config (or ForwarderOptions) by hand: networks,
 * address patterns and the relay parsed with the loader's own parsers (a bad one throws: a spec mistake).
 */
import { parseAddressPattern, parseNetwork, type AddressPattern, type Network } from '../../lib/config';
import { parseRelay, type RelaySpec } from '../../lib/util/net-address';

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

/** `relay('[127.0.0.1]:2525')`: the RelaySpec the loader makes of that `relay` setting. */
export function relay(text: string): RelaySpec {
  const r = parseRelay(text);
  if (!r.ok) throw new Error(`spec: ${JSON.stringify(text)} is not a relay: ${r.expected}${r.why ? ` (${r.why})` : ''}`);
  return r.value;
}
