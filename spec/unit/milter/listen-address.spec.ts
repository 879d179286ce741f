import { parseListenAddress, formatListenAddress } from '../../../lib/milter/listen-address';
import { MilterListenError } from '../../../lib/milter/errors';

describe('parseListenAddress', () => {
  it.each([
    ['inet:127.0.0.1:8894', { kind: 'inet', host: '127.0.0.1', port: 8894 }],
    ['inet:localhost:0', { kind: 'inet', host: '127.0.0.1', port: 0 }],
    ['inet:0@localhost', { kind: 'inet', host: '127.0.0.1', port: 0 }],
    ['inet:8894@127.0.0.1', { kind: 'inet', host: '127.0.0.1', port: 8894 }],
    ['inet6:[::1]:8894', { kind: 'inet6', host: '::1', port: 8894 }],
    ['inet6:8894@::1', { kind: 'inet6', host: '::1', port: 8894 }],
    ['inet6:8894@[2001:db8::1]', { kind: 'inet6', host: '2001:db8::1', port: 8894 }],
    ['unix:/run/tdc/milter.sock', { kind: 'unix', path: '/run/tdc/milter.sock' }],
    ['local:/var/spool/postfix/tdc/tdc.sock', { kind: 'unix', path: '/var/spool/postfix/tdc/tdc.sock' }],
  ])('%s', (text, expected) => {
    expect(parseListenAddress(text)).toEqual(expected);
  });

  it.each([
    ['tcp:127.0.0.1:8894', /the TCP transport is called "inet"/],
    ['udp:127.0.0.1:8894', /unknown transport "udp"/],
    ['127.0.0.1:8894', /unknown transport "127.0.0.1"/],
    ['', /no transport prefix/],
    ['inet:127.0.0.1', /port "127.0.0.1" is not a number|no port/],
    ['inet:127.0.0.1:', /port "" is not a number/],
    ['inet:127.0.0.1:65536', /port 65536 is above 65535/],
    ['inet:127.0.0.1:-1', /port "-1" is not a number/],
    ['inet::8894', /empty host/],
    ['inet:[::1]:8894', /needs inet6:\[ADDR\]:PORT/],
    ['inet:bad_host!:25', /is not an IPv4 address/],
    ['inet:gw.example.org:8894', /"gw.example.org" is not an IPv4 address \(host names are not resolved/],
    ['inet:8894@gw.example.org', /"gw.example.org" is not an IPv4 address/],
    ['inet6:::1:8894', /put the IPv6 address in brackets/],
    ['inet6:[::1]8894', /expected \[ADDR\]:PORT/],
    ['inet6:[127.0.0.1]:25', /"127.0.0.1" is not an IPv6 address/],
    ['unix:', /empty socket path/],
    ['unix:relative.sock', /must be absolute/],
  ])('rejects %j', (text, pattern) => {
    let err: unknown;
    try {
      parseListenAddress(text);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(MilterListenError);
    expect((err as Error).message).toMatch(/^listen: expected inet:IP:PORT, inet:PORT@IP, inet6:\[IPv6\]:PORT, inet6:PORT@IPv6, unix:\/path or local:\/path, got /);
    expect((err as Error).message).toMatch(pattern);
  });

  it('formats back to the Postfix form', () => {
    expect(formatListenAddress(parseListenAddress('inet:8894@127.0.0.1'))).toBe('inet:127.0.0.1:8894');
    expect(formatListenAddress(parseListenAddress('inet6:8894@::1'))).toBe('inet6:[::1]:8894');
    expect(formatListenAddress(parseListenAddress('local:/x.sock'))).toBe('unix:/x.sock');
  });
});
