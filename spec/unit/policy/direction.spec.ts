/** Incoming or outgoing: daemon name, authentication, internal networks (IPv4, IPv6, IPv4-mapped). */
import type { Config } from '../../../lib/config';
import type { ClientInfo } from '../../../lib/message';
import { classifyDirection } from '../../../lib/policy';
import { parseIp } from '../../../lib/util/ip-network';
import { makeMessage } from '../../support/captured-message';
import { networks } from '../../support/config-values';

const DIRECTION: Config['direction'] = {
  outgoingDaemonNames: ['ORIGINATING', 'submission'],
  authenticatedIsOutgoing: true,
  internalNetworks: networks('10.0.0.0/8', '192.168.1.0/24', '2001:db8:100::/40', '::ffff:172.16.0.0/108', '198.51.100.7'),
};

const inet = (address: string): ClientInfo => ({ hostname: `[${address}]`, family: address.includes(':') ? 'inet6' : 'inet', address, port: 1 });

describe('classifyDirection', () => {
  it.each([
    // macros, client, incoming, reason
    [{ daemon_name: 'mta' }, inet('203.0.113.25'), true, 'client 203.0.113.25, daemon_name mta, not authenticated'],
    [{ daemon_name: 'ORIGINATING' }, inet('203.0.113.25'), false, 'daemon_name ORIGINATING is an outgoing listener'],
    [{ daemon_name: 'originating' }, inet('203.0.113.25'), false, 'daemon_name originating is an outgoing listener'],
    [{ daemon_name: 'Submission' }, inet('203.0.113.25'), false, 'daemon_name Submission is an outgoing listener'],
    [{ daemon_name: 'ORIGINATING2' }, inet('203.0.113.25'), true, 'client 203.0.113.25, daemon_name ORIGINATING2, not authenticated'],
    [{ daemon_name: 'mta', auth_authen: 'alice' }, inet('203.0.113.25'), false, 'client authenticated as alice'],
    [{ daemon_name: 'mta', auth_authen: '' }, inet('203.0.113.25'), true, 'client 203.0.113.25, daemon_name mta, not authenticated'],
    [{}, inet('10.1.2.3'), false, 'client 10.1.2.3 is in internal network 10.0.0.0/8'],
    [{}, inet('11.0.0.1'), true, 'client 11.0.0.1, daemon_name (none), not authenticated'],
    [{}, inet('192.168.1.255'), false, 'client 192.168.1.255 is in internal network 192.168.1.0/24'],
    [{}, inet('192.168.2.1'), true, 'client 192.168.2.1, daemon_name (none), not authenticated'],
    [{}, inet('198.51.100.7'), false, 'client 198.51.100.7 is in internal network 198.51.100.7'],
    [{}, inet('198.51.100.8'), true, 'client 198.51.100.8, daemon_name (none), not authenticated'],
    [{}, inet('2001:db8:1ff:ffff::1'), false, 'client 2001:db8:1ff:ffff::1 is in internal network 2001:db8:100::/40'],
    [{}, inet('2001:db8:200::1'), true, 'client 2001:db8:200::1, daemon_name (none), not authenticated'],
    // an IPv4 client seen on a dual-stack socket, and IPv4 networks written as mapped IPv6
    [{}, inet('::ffff:10.9.8.7'), false, 'client 10.9.8.7 is in internal network 10.0.0.0/8'],
    [{}, inet('::FFFF:172.16.5.1'), false, 'client 172.16.5.1 is in internal network ::ffff:172.16.0.0/108'],
    [{}, inet('172.16.5.1'), false, 'client 172.16.5.1 is in internal network ::ffff:172.16.0.0/108'],
    [{}, inet('172.32.0.1'), true, 'client 172.32.0.1, daemon_name (none), not authenticated'],
    // the MTA's macro is used when the connect info has no IP
    [{ client_addr: '10.0.0.9' }, { hostname: 'localhost', family: 'unix', address: '/run/x' } as ClientInfo, false, 'client 10.0.0.9 is in internal network 10.0.0.0/8'],
    [{ client_addr: 'IPv6:2001:db8:100::5' }, undefined, false, 'client 2001:db8:100::5 is in internal network 2001:db8:100::/40'],
    [{}, { hostname: 'localhost', family: 'unknown' } as ClientInfo, true, 'client address unknown, daemon_name (none), not authenticated'],
  ])('%j from %j → incoming %s', (macros, client, incoming, reason) => {
    const msg = makeMessage({ macros: macros as Record<string, string>, client });
    expect(classifyDirection(msg, DIRECTION)).toEqual({ incoming, reason });
  });

  it('authentication is not outgoing when authenticated_is_outgoing = no', () => {
    const msg = makeMessage({ macros: { auth_authen: 'alice' }, client: inet('203.0.113.1') });
    const r = classifyDirection(msg, { ...DIRECTION, authenticatedIsOutgoing: false });
    expect(r).toEqual({ incoming: true, reason: 'client 203.0.113.1, daemon_name (none), authenticated as alice (not counted as outgoing)' });
  });

  it('parses client addresses the way MTAs write them', () => {
    expect(parseIp('[192.0.2.1]')).toEqual({ family: 4, bytes: Uint8Array.from([192, 0, 2, 1]) });
    expect(parseIp('fe80::1%eth0')?.family).toBe(6);
    expect(parseIp('not-an-ip')).toBeUndefined();
    expect(parseIp('')).toBeUndefined();
  });
});
