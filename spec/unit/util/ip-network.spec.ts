/**
 * The shared IP and network parser: networks keep their text, IPv4-mapped networks and addresses
 * match as IPv4, membership at prefix boundaries, and the text printed back.
 */
import { findNetwork, formatNetworks, inNetwork, parseIp, parseNetwork, type Network } from '../../../lib/util/ip-network';

function net(text: string): Network {
  const r = parseNetwork(text);
  if (!r.ok) throw new Error(`bad network ${text}`);
  return r.value;
}

function ip(text: string) {
  const r = parseIp(text);
  if (!r) throw new Error(`bad address ${text}`);
  return r;
}

describe('parseNetwork', () => {
  it('keeps the text as written, lower-cased, and the network bytes', () => {
    expect(net('2001:DB8::/32')).toEqual({ text: '2001:db8::/32', family: 6, bytes: ip('2001:db8::').bytes, prefix: 32 });
    expect(net('192.0.2.7')).toEqual({ text: '192.0.2.7', family: 4, bytes: Uint8Array.from([192, 0, 2, 7]), prefix: 32 });
  });

  it('turns an IPv4-mapped IPv6 network into its IPv4 network (text unchanged)', () => {
    expect(net('::ffff:172.16.0.0/108')).toEqual({ text: '::ffff:172.16.0.0/108', family: 4, bytes: Uint8Array.from([172, 16, 0, 0]), prefix: 12 });
    expect(net('::ffff:0:0/96')).toEqual({ text: '::ffff:0:0/96', family: 4, bytes: Uint8Array.from([0, 0, 0, 0]), prefix: 0 });
    // Shorter than /96 it is not only IPv4 space: it stays an IPv6 network.
    expect(net('::/80').family).toBe(6);
  });

  it('refuses what the config parser refuses, with the same words', () => {
    expect(parseNetwork('10.1.2.3/8')).toEqual({ ok: false, expected: 'a network such as 10.0.0.0/8 or 2001:db8::/32, with host bits zero' });
    expect(parseNetwork('gw.example.org')).toEqual({ ok: false, expected: 'a network such as 10.0.0.0/8 or 2001:db8::/32' });
  });
});

describe('membership', () => {
  it.each([
    ['10.0.0.0/8', '10.255.255.255', true], ['10.0.0.0/8', '11.0.0.0', false],
    ['192.168.1.0/25', '192.168.1.127', true], ['192.168.1.0/25', '192.168.1.128', false],
    ['0.0.0.0/0', '203.0.113.9', true], ['0.0.0.0/0', '2001:db8::1', false],
    ['2001:db8:100::/40', '2001:db8:1ff:ffff::1', true], ['2001:db8:100::/40', '2001:db8:200::1', false],
    ['::ffff:172.16.0.0/108', '172.31.255.255', true], ['::ffff:172.16.0.0/108', '::ffff:172.20.0.1', true],
    ['127.0.0.0/8', '::ffff:127.0.0.1', true], ['::1', '::1', true], ['::1', '127.0.0.1', false],
  ])('%s holds %s: %s', (network, address, expected) => {
    expect(inNetwork(ip(address), net(network))).toBe(expected);
  });

  it('findNetwork gives the first network that holds the address', () => {
    const list = [net('10.0.0.0/8'), net('10.1.0.0/16')];
    expect(findNetwork(list, ip('10.1.2.3'))?.text).toBe('10.0.0.0/8');
    expect(findNetwork(list, ip('192.0.2.1'))).toBeUndefined();
    expect(findNetwork([], ip('10.1.2.3'))).toBeUndefined();
  });

  it('formatNetworks prints the list back as milter.conf text', () => {
    expect(formatNetworks([net('10.0.0.0/8'), net('::FFFF:172.16.0.0/108'), net('::1')])).toBe('10.0.0.0/8, ::ffff:172.16.0.0/108, ::1');
    expect(formatNetworks([])).toBe('');
  });
});
