/**
 * The milter listen address for the server: the shared parser (lib/util/net-address: Postfix style
 * `inet:IP:PORT`, `inet6:[ADDR]:PORT`, `unix:/path`, `local:/path` and Sendmail's `inet:PORT@IP`,
 * `inet6:PORT@ADDR`) with a MilterListenError saying what was expected. Imports util and ./errors.
 */
import { formatListenAddress, parseListenAddress as parseShared, LISTEN_FORMS, type ListenAddress } from '../util/net-address';
import { MilterListenError } from './errors';

export { formatListenAddress, type ListenAddress };

/** Parse a listen address or throw MilterListenError (`listen: expected …, got "…" (why)`). */
export function parseListenAddress(text: string): ListenAddress {
  const r = parseShared(text);
  if (r.ok) return r.value;
  throw new MilterListenError(`listen: expected ${LISTEN_FORMS}, got "${text}" (${r.why ?? 'not an address'})`);
}
