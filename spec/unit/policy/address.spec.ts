/** Address patterns as gateways use them: user@domain, @domain, @.domain (subdomains only), user@. */
import { parseAddressPattern } from '../../../lib/config';
import { matchesAny, splitAddress } from '../../../lib/policy';

function pattern(text: string) {
  const r = parseAddressPattern(text);
  if (!r.ok) throw new Error(`bad pattern ${text}`);
  return r.value;
}

describe('address patterns', () => {
  it.each([
    // pattern, address, matches
    ['cfo@example.com', 'cfo@example.com', true],
    ['cfo@example.com', 'CFO@Example.COM', true],
    ['CFO@EXAMPLE.com', 'cfo@example.com', true],
    ['cfo@example.com', 'cfo@sub.example.com', false],
    ['cfo@example.com', 'cf@example.com', false],
    ['cfo@example.com', 'xcfo@example.com', false],
    ['@example.com', 'anyone@example.com', true],
    ['@example.com', 'anyone@EXAMPLE.COM.', true],
    ['@example.com', 'anyone@sub.example.com', false],
    ['@example.com', 'anyone@badexample.com', false],
    ['@example.com', 'example.com@other.org', false],
    ['@.example.com', 'anyone@sub.example.com', true],
    ['@.example.com', 'anyone@a.b.example.com', true],
    ['@.example.com', 'anyone@example.com', false],
    ['@.example.com', 'anyone@badexample.com', false],
    ['postmaster@', 'postmaster@example.com', true],
    ['postmaster@', 'Postmaster@other.org', true],
    ['postmaster@', 'postmaster', true],
    ['postmaster@', 'postmaster2@example.com', false],
    ['@example.com', '"a@b"@example.com', true],
    ['@example.com', '', false],
    ['postmaster@', '', false],
  ])('%s vs %j → %s', (p, address, expected) => {
    expect(matchesAny(address, [pattern(p)])).toBe(expected);
  });

  it('matches when any pattern of a list matches', () => {
    const list = ['@a.example', 'x@b.example'].map(pattern);
    expect(matchesAny('x@b.example', list)).toBe(true);
    expect(matchesAny('y@b.example', list)).toBe(false);
  });

  it('splits at the last @', () => {
    expect(splitAddress('"a@b"@Example.com.')).toEqual({ local: '"a@b"', domain: 'example.com' });
  });
});
