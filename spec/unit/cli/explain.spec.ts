/**
 * `tdc-milter explain` against the policies of milter.conf.example: direction, each recipient's
 * policy and decision, the copies per intake address, option checking, and the formatted text.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseConfigText, type Config } from '../../../lib/config';
import { explain, formatExplanation, messageFor, parseExplainArgs } from '../../../lib/cli/explain';

const EXAMPLE = path.resolve(__dirname, '../../../milter.conf.example');
const GLOBAL = '33c48e-27xp9-05ecb4@beta.cmd.cisco.com';
const FINANCE = '15e1c36b-098c-4e87-590@beta.cmd.cisco.com';
const EMEA = '8f01aa-31kq2-77d0e1@eu.cmd.cisco.com';

function example(hostname = 'gw1.example.org', edit: (t: string) => string = (t) => t): Config {
  const r = parseConfigText(edit(fs.readFileSync(EXAMPLE, 'utf8')), 'milter.conf.example', { hostname });
  if (!r.ok) throw new Error(r.errors.join('\n'));
  return r.config;
}

function run(argv: string[], config = example()): ReturnType<typeof explain> {
  return explain(config, 'milter.conf.example', parseExplainArgs(argv).input);
}

describe('explain with the policies of milter.conf.example', () => {
  it('incoming mail: finance → its own intake, lab → tdc = no, others → the global intake; one copy per intake', () => {
    const e = run(['--from', 'alice@partner.example', '--rcpt', 'ann@finance.example.com', '--rcpt', 'x@eu.finance.example.com',
      '--rcpt', 'CFO@example.com', '--rcpt', 'lab1@lab.example.com', '--rcpt', 'bob@example.com', '--client-ip', '203.0.113.5']);
    expect(e.direction).toEqual({ incoming: true, reason: 'client 203.0.113.5, daemon_name (none), not authenticated' });
    expect(e.recipients).toEqual([
      { recipient: 'ann@finance.example.com', policy: 'finance', tdc: 'custom', decision: `journaled to ${FINANCE}` },
      { recipient: 'x@eu.finance.example.com', policy: 'finance', tdc: 'custom', decision: `journaled to ${FINANCE}` },
      { recipient: 'CFO@example.com', policy: 'finance', tdc: 'custom', decision: `journaled to ${FINANCE}` },
      { recipient: 'lab1@lab.example.com', policy: 'lab', tdc: 'no', decision: 'not journaled: tdc = no' },
      { recipient: 'bob@example.com', policy: 'DEFAULT', tdc: 'global', decision: `journaled to ${GLOBAL}` },
    ]);
    expect(e.plan.copies.map((c) => [c.intakeAddress, c.recipients.length])).toEqual([[FINANCE, 3], [GLOBAL, 1]]);
  });

  it('outgoing by listener, by authentication, by internal network: nothing journaled, with the reason', () => {
    expect(run(['--from', 'ann@example.com', '--rcpt', 'x@partner.example', '--daemon-name', 'ORIGINATING']).recipients[0]!.decision)
      .toBe('not journaled: outgoing: daemon_name ORIGINATING is an outgoing listener');
    const auth = run(['--from', 'ann@example.com', '--rcpt', 'x@partner.example', '--auth', 'ann']);
    expect(auth.direction).toEqual({ incoming: false, reason: 'client authenticated as ann' });
    expect(auth.plan.copies).toEqual([]);
    const internal = example('gw1.example.org', (t) => t.replace(/^internal_networks =/m, 'internal_networks = 10.0.0.0/8'));
    expect(run(['--from', 'a@b.example', '--rcpt', 'bob@example.com', '--client-ip', '10.1.2.3'], internal).direction)
      .toEqual({ incoming: false, reason: 'client 10.1.2.3 is in internal network 10.0.0.0/8' });
  });

  it('the [group emea] intake applies on a machine of that group; [machine gw3.example.org] enabled = no wins', () => {
    const emea = example('gw1.example.org', (t) => t.replace(/^group =/m, 'group = emea'));
    expect(run(['--from', 'a@partner.example', '--rcpt', 'bob@example.com'], emea).recipients[0]!.decision).toBe(`journaled to ${EMEA}`);
    const gw3 = run(['--from', 'a@partner.example', '--rcpt', 'bob@example.com'], example('gw3.example.org'));
    expect(gw3.recipients[0]!.decision).toBe('not journaled: journaling is disabled');
  });

  it('an intake address as recipient is never journaled; a recipient listed twice counts once', () => {
    const e = run(['--from', 'a@partner.example', '--rcpt', GLOBAL, '--rcpt', 'bob@example.com', '--rcpt', 'BOB@example.com']);
    expect(e.recipients.map((r) => r.decision)).toEqual([
      'not journaled: recipient is an intake address (loop safety)',
      `journaled to ${GLOBAL}`,
      'not journaled: listed twice; the first one counts',
    ]);
  });

  it('--header feeds the message headers the policy code reads (our own journal copy coming back is not journaled)', () => {
    const args = ['--from', '<>', '--rcpt', 'bob@example.com', '--header', 'X-TDC-Journal: gw1.example.org; queue-id=A; copy-id=A.1', '--header', 'X-Spam-Flag: YES'];
    const { input } = parseExplainArgs(args);
    expect(messageFor(input).headers).toEqual([
      { name: 'X-TDC-Journal', value: ' gw1.example.org; queue-id=A; copy-id=A.1' },
      { name: 'X-Spam-Flag', value: ' YES' },
    ]);
    expect(run(args).plan.reason).toBe('message is itself a journal copy of this gateway (X-TDC-Journal header, null sender)');
  });

  it("--header reaches the policy's skip_if_header rules (DEFAULT skips X-Virus-Status: ^Infected)", () => {
    const args = ['--from', 'a@partner.example', '--rcpt', 'bob@example.com', '--rcpt', 'ann@finance.example.com'];
    const infected = run([...args, '--header', 'X-Virus-Status: Infected (Eicar)']);
    expect(infected.recipients.map((r) => [r.policy, r.decision])).toEqual([
      ['DEFAULT', expect.stringMatching(/^not journaled: .*X-Virus-Status: \^Infected/)],
      ['finance', `journaled to ${FINANCE}`],
    ]);
    expect(run([...args, '--header', 'X-Virus-Status: Clean']).recipients[0]!.decision).toBe(`journaled to ${GLOBAL}`);
  });

  it('the formatted explanation: direction, a table per recipient, the copies, and that nothing was sent', () => {
    const text = formatExplanation(run(['--from', 'alice@partner.example', '--rcpt', 'ann@finance.example.com', '--rcpt', 'lab1@lab.example.com', '--client-ip', '2001:db8::5']));
    expect(text).toBe(
      `configuration: milter.conf.example; journaling on, global intake ${GLOBAL}\n` +
        'message: from alice@partner.example, client 2001:db8::5, daemon_name (not given), not authenticated\n' +
        'direction: incoming (client 2001:db8::5, daemon_name (none), not authenticated)\n' +
        '\n' +
        'recipient                policy   tdc     decision\n' +
        `ann@finance.example.com  finance  custom  journaled to ${FINANCE}\n` +
        'lab1@lab.example.com     lab      no      not journaled: tdc = no\n' +
        '\n' +
        'journal copies: 1 (one per intake address)\n' +
        `  copy 1 to ${FINANCE} (policy finance) for 1 recipient(s): ann@finance.example.com\n` +
        'nothing was sent\n',
    );
  });

  it('refuses bad options with the problem', () => {
    expect(() => parseExplainArgs(['--rcpt', 'a@b'])).toThrow("--from is required ('' for the null sender)");
    expect(() => parseExplainArgs(['--from', 'a@b'])).toThrow('at least one --rcpt is required');
    expect(() => parseExplainArgs(['--from', 'a@b', '--rcpt', 'c@d', '--client-ip', '300.1.1.1'])).toThrow('--client-ip: expected an IPv4 or IPv6 address, got "300.1.1.1"');
    expect(() => parseExplainArgs(['--from', 'a@b', '--rcpt', 'c@d', '--header', 'no colon'])).toThrow("--header: expected 'Name: value', got \"no colon\"");
    expect(() => parseExplainArgs(['--from', 'a@b', '--rcpt', 'c@d', '--send'])).toThrow('unknown option --send');
  });
});
