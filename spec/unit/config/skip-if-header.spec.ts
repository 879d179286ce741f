/**
 * `skip_if_header` in milter.conf: one rule per line, repeatable per policy, commas inside a regular
 * expression kept; `tdc-milter config` writes the rules back so its output parses to the same rules.
 * (Bad rules: spec/fixtures/config/invalid/bad-skip-if-header.conf, checked by parser.spec.)
 */
import { describeEffective, parseConfigText, type Config } from '../../../lib/config';

function config(text: string): Config {
  const r = parseConfigText(text, 'milter.conf', { hostname: 'gw1.example.org' });
  if (!r.ok) throw new Error(r.errors.join('\n'));
  return r.config;
}

const TEXT = `
[tdc]
intake_address = global@intake.example

[policy finance]
recipients = @finance.example.org
skip_if_header = X-Spam-Flag: ^YES
skip_if_header = X-Spam-Level:\\*{5,}   # a comma inside a quantifier is part of the expression

[policy DEFAULT]
tdc = global
`;

describe('skip_if_header', () => {
  it('collects every line of the policy in file order; policies without rules have none', () => {
    const c = config(TEXT);
    expect(c.policies.map((p) => [p.name, p.skipIfHeader])).toEqual([
      ['finance', [{ header: 'X-Spam-Flag', pattern: '^YES' }, { header: 'X-Spam-Level', pattern: '\\*{5,}' }]],
      ['DEFAULT', undefined],
    ]);
  });

  it('tdc-milter config writes each rule on its own line, and the output parses to the same rules', () => {
    const c = config(TEXT);
    const text = describeEffective(c);
    expect(text).toContain('skip_if_header = X-Spam-Flag: ^YES\nskip_if_header = X-Spam-Level: \\*{5,}\n');
    expect(config(text).policies).toEqual(c.policies);
  });

  it('is a policy key only', () => {
    const r = parseConfigText('[tdc]\nskip_if_header = X-Spam-Flag: ^YES\n', 'milter.conf', { hostname: 'h' });
    expect(r.ok ? [] : r.errors).toEqual(['milter.conf:2: skip_if_header: expected a key of [tdc], got an unknown key']);
  });
});
