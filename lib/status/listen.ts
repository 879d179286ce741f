/**
 * The `status_listen` address for the server and the CLI client: the shared parser of
 * lib/util/net-address (`127.0.0.1:8895`, `[::1]:8895`, `localhost:8895` taken as 127.0.0.1, never
 * resolved; port 0 allowed) with a TdcError. Imports only util; `no` (endpoint off) is the caller's business.
 */
import { TdcError } from '../util/errors';
import { formatStatusAddress, isLoopback, parseStatusAddress, type StatusAddress } from '../util/net-address';

export { formatStatusAddress, isLoopback, type StatusAddress };

/** Parse `HOST:PORT`; an `inet:`/`inet6:` prefix is tolerated. Throws TdcError(setting) naming the setting. */
export function parseStatusListen(text: string, setting: 'status_listen' | 'metrics_listen' = 'status_listen'): StatusAddress {
  const r = parseStatusAddress(text);
  if (r.ok) return r.value;
  throw new TdcError(setting, `${setting}: expected HOST:PORT with an IP address (e.g. 127.0.0.1:8895 or [::1]:8895), got ${JSON.stringify(text)}: ${r.why ?? 'not an address'}`);
}
