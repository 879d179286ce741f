/**
 * status_listen parsing (IP literals only, never a name lookup) and the loopback test that guards
 * the unauthenticated endpoint.
 */
import { formatStatusAddress, isLoopback, parseStatusListen } from '../../../lib/status';

describe('parseStatusListen', () => {
  it.each([
    ['127.0.0.1:8895', '127.0.0.1', 8895],
    ['[::1]:8895', '::1', 8895],
    ['127.0.0.1:0', '127.0.0.1', 0],
    ['localhost:8895', '127.0.0.1', 8895],
    ['inet:127.0.0.2:9000', '127.0.0.2', 9000],
    ['inet6:[::1]:65535', '::1', 65535],
    ['[127.0.0.1]:8895', '127.0.0.1', 8895],
    ['  0.0.0.0:8895 ', '0.0.0.0', 8895],
  ])('%s → %s port %s', (text, host, port) => {
    expect(parseStatusListen(text)).toEqual({ host, port });
  });

  it.each([
    ['8895', /no port/],
    ['127.0.0.1', /no port/],
    ['127.0.0.1:65536', /port 65536 is not 0-65535/],
    ['127.0.0.1:', /port \(empty\)/],
    ['127.0.0.1:80x', /port 80x/],
    ['::1:8895', /put an IPv6 address in brackets/],
    ['[::1]8895', /\[ADDR\]:PORT/],
    ['[gw.example]:8895', /gw\.example is not an IP address/],
    ['status.example.org:8895', /status\.example\.org is not an IP address/],
    ['no', /no port/],
  ])('refuses %s', (text, why) => {
    expect(() => parseStatusListen(text)).toThrow(why);
    expect(() => parseStatusListen(text)).toThrow(/^status_listen: expected HOST:PORT with an IP address/);
  });

  it('names metrics_listen when that is the setting it reads', () => {
    expect(() => parseStatusListen('no', 'metrics_listen')).toThrow(/^metrics_listen: expected HOST:PORT with an IP address/);
  });

  it('formats an address back into the form it reads', () => {
    expect(formatStatusAddress({ host: '::1', port: 8895 })).toBe('[::1]:8895');
    expect(formatStatusAddress({ host: '127.0.0.1', port: 1 })).toBe('127.0.0.1:1');
    expect(parseStatusListen(formatStatusAddress({ host: '::1', port: 7 }))).toEqual({ host: '::1', port: 7 });
  });
});

describe('isLoopback', () => {
  it.each([
    ['127.0.0.1', true],
    ['127.255.0.9', true],
    ['::1', true],
    ['0:0:0:0:0:0:0:1', true],
    ['::ffff:127.0.0.1', true],
    ['0.0.0.0', false],
    ['::', false],
    ['10.0.0.1', false],
    ['128.0.0.1', false],
    ['::ffff:10.0.0.1', false],
    ['localhost', false],
    ['', false],
  ])('%s → %s', (host, yes) => {
    expect(isLoopback(host)).toBe(yes);
  });
});
