/**
 * `metrics_allow` matching for the metrics listener: IPv4 and IPv6 networks, single addresses,
 * IPv4-mapped client addresses of a dual-stack socket, and anything else refused (by the config
 * loader, which hands the listener parsed networks).
 */
import { parseConfigText } from '../../../lib/config';
import { clientAllowed } from '../../../lib/status';
import { networks } from '../../support/config-values';

describe('metrics_allow', () => {
  const list = networks('192.0.2.0/24', '2001:db8::/32', '127.0.0.2');

  it('admits clients in the networks, as the socket reports them', () => {
    expect(clientAllowed(list, '192.0.2.77')).toBe(true);
    expect(clientAllowed(list, '::ffff:192.0.2.77')).toBe(true);
    expect(clientAllowed(list, '2001:db8:1::5')).toBe(true);
    expect(clientAllowed(list, '127.0.0.2')).toBe(true);
  });

  it('refuses everyone else, and a socket without an address', () => {
    expect(clientAllowed(list, '192.0.3.1')).toBe(false);
    expect(clientAllowed(list, '::ffff:10.0.0.1')).toBe(false);
    expect(clientAllowed(list, '2001:db9::1')).toBe(false);
    expect(clientAllowed(list, '127.0.0.1')).toBe(false);
    expect(clientAllowed(list, undefined)).toBe(false);
    expect(clientAllowed(networks(), '127.0.0.1')).toBe(false);
  });

  it('rejects an entry that is not a network', () => {
    const r = parseConfigText('[milter]\nmetrics_allow = 127.0.0.0/8, gw.example.org\n', 'milter.conf', { hostname: 'gw1.example.org' });
    expect(r.ok ? [] : r.errors).toEqual([
      'milter.conf:2: metrics_allow: expected networks such as 10.0.0.0/8 or 2001:db8::/32, separated by commas, got "gw.example.org"',
    ]);
  });
});
