/**
 * planJournal: the whole-message decisions (disabled, outgoing, journal report, oversized) and the
 * per-recipient policy split into one copy per intake address.
 */
import { parseConfigText, type Config } from '../../../lib/config';
import { planJournal } from '../../../lib/policy';
import { makeMessage } from '../../support/captured-message';

const CONF = `
[tdc]
intake_address = global@intake.example

[policy finance]
recipients = @finance.example.com, @.finance.example.com, cfo@example.com
tdc = custom
intake_address = finance@intake.example

[policy lab]
recipients = @lab.example.com
tdc = no

[policy partners]
recipients = @example.com
senders = @partner.example
tdc = custom
intake_address = Finance@Intake.example

[policy DEFAULT]
tdc = global
`;

function config(text = CONF): Config {
  const r = parseConfigText(text, 'milter.conf', { hostname: 'gw1.example.org' });
  if (!r.ok) throw new Error(r.errors.join('\n'));
  return r.config;
}

describe('planJournal: the policy split', () => {
  it('recipients in three policies (custom, no, global) → two copies and one skipped group', () => {
    const msg = makeMessage({
      sender: 'someone@elsewhere.example',
      recipients: ['ann@finance.example.com', 'bob@example.com', 'lab1@lab.example.com', 'cfo@EXAMPLE.com', 'x@eu.finance.example.com', 'lab2@lab.example.com'],
    });
    expect(planJournal(msg, config())).toEqual({
      copies: [
        { intakeAddress: 'finance@intake.example', policies: ['finance'], recipients: ['ann@finance.example.com', 'cfo@EXAMPLE.com', 'x@eu.finance.example.com'] },
        { intakeAddress: 'global@intake.example', policies: ['DEFAULT'], recipients: ['bob@example.com'] },
      ],
      skipped: [{ policy: 'lab', recipients: ['lab1@lab.example.com', 'lab2@lab.example.com'], reason: 'tdc = no' }],
    });
  });

  it('two policies with the same intake address share one copy listing both policies', () => {
    const msg = makeMessage({ sender: 'p@partner.example', recipients: ['bob@example.com', 'ann@finance.example.com'] });
    expect(planJournal(msg, config()).copies).toEqual([
      { intakeAddress: 'Finance@Intake.example', policies: ['partners', 'finance'], recipients: ['bob@example.com', 'ann@finance.example.com'] },
    ]);
  });

  it('the senders condition must hold too (first policy whose recipients AND senders match)', () => {
    const other = makeMessage({ sender: 'p@other.example', recipients: ['bob@example.com'] });
    expect(planJournal(other, config()).copies.map((c) => c.policies)).toEqual([['DEFAULT']]);
    const nullSender = makeMessage({ sender: '', recipients: ['bob@example.com'] });
    expect(planJournal(nullSender, config()).copies.map((c) => c.policies)).toEqual([['DEFAULT']]);
  });

  it('a recipient that is an intake address is never journaled', () => {
    const msg = makeMessage({ recipients: ['GLOBAL@intake.example', 'finance@intake.example', 'bob@elsewhere.example'] });
    expect(planJournal(msg, config())).toEqual({
      copies: [{ intakeAddress: 'global@intake.example', policies: ['DEFAULT'], recipients: ['bob@elsewhere.example'] }],
      skipped: [{ policy: 'DEFAULT', recipients: ['GLOBAL@intake.example', 'finance@intake.example'], reason: 'recipient is an intake address (loop safety)' }],
    });
  });

  it('a recipient given twice is listed once', () => {
    const msg = makeMessage({ recipients: ['bob@elsewhere.example', 'Bob@Elsewhere.example'] });
    expect(planJournal(msg, config()).copies[0]!.recipients).toEqual(['bob@elsewhere.example']);
  });

  it('keeps the order of first appearance', () => {
    const msg = makeMessage({ recipients: ['z@z.example', 'a@finance.example.com', 'b@b.example'] });
    expect(planJournal(msg, config()).copies.map((c) => [c.intakeAddress, c.recipients])).toEqual([
      ['global@intake.example', ['z@z.example', 'b@b.example']],
      ['finance@intake.example', ['a@finance.example.com']],
    ]);
  });
});

describe('planJournal: messages not journaled at all', () => {
  const none = (reason: string) => ({ copies: [], skipped: [], reason });

  it('journaling disabled → nothing', () => {
    const c = config(CONF.replace('[tdc]', '[tdc]\nenabled = no'));
    expect(planJournal(makeMessage(), c)).toEqual(none('journaling is disabled'));
  });

  it('outgoing → nothing, with the direction reason', () => {
    const msg = makeMessage({ macros: { daemon_name: 'ORIGINATING' } });
    expect(planJournal(msg, config())).toEqual(none('outgoing: daemon_name ORIGINATING is an outgoing listener'));
  });

  it('our own journal copy coming back (marker naming this gateway, null sender) → nothing', () => {
    const msg = makeMessage({
      sender: '',
      headers: [{ name: 'Subject', value: ' x' }, { name: 'x-tdc-journal', value: ' GW1.example.org; queue-id=ABC; copy-id=ABC.1; policy=DEFAULT' }],
    });
    expect(planJournal(msg, config())).toEqual(
      none('message is itself a journal copy of this gateway (X-TDC-Journal header, null sender)'),
    );
  });

  it.each([
    ['X-MS-Journal-Report', '', ''],
    ['X-TDC-Journal', ' gw1.example.org; queue-id=ABC', 'attacker@evil.example'],
    ['X-TDC-Journal', ' other-gw.example.org; queue-id=ABC', ''],
  ])('a forged or foreign marker (%s:%s from <%s>) does not skip the scan', (name, value, sender) => {
    const msg = makeMessage({ sender, headers: [{ name: 'Subject', value: ' x' }, { name, value }] });
    const plan = planJournal(msg, config());
    expect(plan.reason).toBeUndefined();
    expect(plan.copies.length).toBeGreaterThan(0);
  });

  it('oversized → nothing', () => {
    const msg = makeMessage({ oversized: true });
    expect(planJournal(msg, config()).reason).toMatch(/^message of \d+ body bytes is over max_message_size \(52428800\)$/);
  });

  it('an incoming message gets copies and no whole-message reason', () => {
    expect(planJournal(makeMessage(), config()).reason).toBeUndefined();
  });
});

describe('planJournal: skip_if_header', () => {
  const SKIP = CONF.replace('[policy lab]', 'skip_if_header = X-Spam-Flag: ^yes\nskip_if_header = X-Virus-Status: infected\n\n[policy lab]')
    .replace('[policy lab]\nrecipients = @lab.example.com\ntdc = no', '[policy lab]\nrecipients = @lab.example.com\ntdc = no\nskip_if_header = X-Spam-Flag: ^YES');
  const rcpts = ['ann@finance.example.com', 'cfo@example.com', 'cy@lab.example.com', 'dee@other.example'];
  const plan = (headers: [string, string][]) =>
    planJournal(makeMessage({ recipients: rcpts, headers: headers.map(([name, value]) => ({ name, value })) }), config(SKIP));

  it('a matching header skips the recipients of that policy only, with the rule in the reason and byHeader set', () => {
    const p = plan([['Subject', ' x'], ['X-SPAM-FLAG', ' YES']]);
    expect(p.skipped).toContainEqual({ policy: 'finance', recipients: ['ann@finance.example.com', 'cfo@example.com'], reason: 'skip_if_header X-Spam-Flag: ^yes matched', byHeader: true });
    expect(p.copies.map((c) => [c.intakeAddress, c.recipients])).toEqual([['global@intake.example', ['dee@other.example']]]);
  });

  it('tdc = no wins over a rule; a folded value is unfolded; any occurrence of the header counts', () => {
    const p = plan([['X-Virus-Status', ' Clean'], ['X-Virus-Status', ' Virus\n\tInfected']]);
    expect(p.skipped.map((s) => [s.policy, s.reason])).toEqual([
      ['finance', 'skip_if_header X-Virus-Status: infected matched'],
      ['lab', 'tdc = no'],
    ]);
  });

  it('no matching header: journaled as usual', () => {
    const p = plan([['X-Spam-Flag', ' NO']]);
    expect(p.copies.flatMap((c) => c.recipients).sort()).toEqual(['ann@finance.example.com', 'cfo@example.com', 'dee@other.example']);
  });
});
