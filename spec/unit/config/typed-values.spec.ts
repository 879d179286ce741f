/**
 * internal_networks, metrics_allow and policy recipients/senders are parsed once, by the loader, into
 * the values policy and the metrics listener use; `tdc-milter config` prints them back as file text;
 * and the runtime modules never parse them again.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describeEffective, parseConfigText, type Config } from '../../../lib/config';
import { matchPolicy } from '../../../lib/policy';

const TEXT = `[milter]
metrics_allow = 192.0.2.0/24, 2001:DB8::/32
[tdc]
intake_address = global@intake.example
[direction]
internal_networks = 10.0.0.0/8, ::FFFF:172.16.0.0/108
[policy finance]
recipients = CFO@Example.com, @Finance.Example.com, @.finance.example.com, postmaster@
senders = @Partner.Example
tdc = no
`;

function load(text = TEXT): Config {
  const r = parseConfigText(text, 'milter.conf', { hostname: 'gw1.example.org' });
  if (!r.ok) throw new Error(r.errors.join('\n'));
  return r.config;
}

describe('list values parsed at load time', () => {
  it('networks are parsed, ready to match, and keep their text', () => {
    const c = load();
    expect(c.direction.internalNetworks).toEqual([
      { text: '10.0.0.0/8', family: 4, bytes: Uint8Array.from([10, 0, 0, 0]), prefix: 8 },
      { text: '::ffff:172.16.0.0/108', family: 4, bytes: Uint8Array.from([172, 16, 0, 0]), prefix: 12 },
    ]);
    expect(c.milter.metricsAllow.map((n) => [n.text, n.family, n.prefix])).toEqual([['192.0.2.0/24', 4, 24], ['2001:db8::/32', 6, 32]]);
  });

  it('address patterns are parsed (lower-case) into their kinds', () => {
    const finance = load().policies[0]!;
    expect(finance.recipients).toEqual([
      { kind: 'exact', local: 'cfo', domain: 'example.com' },
      { kind: 'domain', domain: 'finance.example.com' },
      { kind: 'subdomain', domain: 'finance.example.com' },
      { kind: 'local', local: 'postmaster' },
    ]);
    expect(finance.senders).toEqual([{ kind: 'domain', domain: 'partner.example' }]);
    expect(matchPolicy('ann@eu.FINANCE.example.com', 'x@partner.example', load().policies)?.name).toBe('finance');
    expect(matchPolicy('ann@eu.finance.example.com', 'x@other.example', load().policies)?.name).toBe('DEFAULT');
  });

  it('tdc-milter config prints them back as the file text, which loads to the same values', () => {
    const c = load();
    const out = describeEffective(c);
    expect(out).toMatch(/^metrics_allow = 192\.0\.2\.0\/24, 2001:db8::\/32\s+# milter \(milter\.conf:2\)$/m);
    expect(out).toMatch(/^internal_networks = 10\.0\.0\.0\/8, ::ffff:172\.16\.0\.0\/108\s+# direction \(milter\.conf:6\)$/m);
    expect(out).toMatch(/^recipients = cfo@example\.com, @finance\.example\.com, @\.finance\.example\.com, postmaster@$/m);
    expect(out).toMatch(/^senders = @partner\.example$/m);
    const again = load(out);
    expect(again.direction).toEqual(c.direction);
    expect(again.milter.metricsAllow).toEqual(c.milter.metricsAllow);
    expect(again.policies).toEqual(c.policies);
  });

  it('policy and the metrics listener never parse networks or patterns themselves', () => {
    const lib = path.resolve(__dirname, '../../../lib');
    const runtime = ['policy', 'status'].flatMap((dir) =>
      fs.readdirSync(path.join(lib, dir)).filter((f) => f.endsWith('.ts')).map((f) => path.join(dir, f)));
    expect(runtime.length).toBeGreaterThan(5);
    const parsing = runtime.filter((f) => /\b(parseCidr|parseNetwork|parseAddressPattern|BlockList)\b/.test(fs.readFileSync(path.join(lib, f), 'utf8')));
    expect(parsing).toEqual([]);
  });
});
