/**
 * The Journaler with a fake sink: decisions (logged and counted), skip_if_header, one copy per
 * intake with its `body` type, copies built only when the sink takes them, and a bug that costs
 * only the copy.
 */
import { parseConfigText, type Config } from '../../../lib/config';
import type { CopyIdentity } from '../../../lib/forwarder';
import { Journaler, type JournalDecision } from '../../../lib/journaler';
import { ManualClock } from '../../../lib/util/clock';
import { MemoryLogger } from '../../../lib/util/logger';
import { makeMessage } from '../../support/captured-message';
import { unjournal } from '../../support/unjournal';

const CONF = `
[milter]
hostname = gw1.example.org

[tdc]
intake_address = global@intake.example

[policy finance]
recipients = @finance.example.org
tdc = custom
intake_address = finance@intake.example
skip_if_header = X-Spam-Flag: ^YES
skip_if_header = X-Virus-Status: ^Infected[:,] .{0,200}(found|detected)

[policy lab]
recipients = @lab.example.org
tdc = no

[policy DEFAULT]
tdc = global
skip_if_header = X-Virus-Status: ^Infected
`;

function config(text = CONF): Config {
  const r = parseConfigText(text, 'milter.conf', { hostname: 'gw1.example.org' });
  if (!r.ok) throw new Error(r.errors.join('\n'));
  return r.config;
}

function setup(opts: { accept?: boolean; conf?: Config } = {}) {
  const logger = new MemoryLogger();
  const offered: { copy: CopyIdentity; minBytes: number; raw?: Buffer }[] = [];
  const decisions: [string, JournalDecision, number][] = [];
  const journaler = new Journaler({
    logger,
    clock: new ManualClock(),
    config: () => opts.conf ?? config(),
    sink: (copy, minBytes, build) => {
      const entry: { copy: CopyIdentity; minBytes: number; raw?: Buffer } = { copy, minBytes };
      offered.push(entry);
      if (opts.accept === false) return false;
      entry.raw = Buffer.concat(build());
      return true;
    },
    decision: (policy, decision, count = 1) => decisions.push([policy, decision, count]),
  });
  return { journaler, logger, offered, decisions };
}

const RCPTS = ['ann@example.org', 'bob@finance.example.org', 'cy@lab.example.org'];

describe('Journaler', () => {
  it('one copy per intake, named QUEUEID.N, with the body type of its bytes; tdc = no recipients skipped', () => {
    const { journaler, logger, offered, decisions } = setup();
    journaler.handle(makeMessage({ queueId: 'Q1', recipients: RCPTS, headers: [{ name: 'Message-ID', value: ' <m1@x.example>' }] }));
    expect(offered.map((o) => o.copy)).toEqual([
      { id: 'Q1.1', queueId: 'Q1', messageId: '<m1@x.example>', intakeAddress: 'global@intake.example', body: '7bit' },
      { id: 'Q1.2', queueId: 'Q1', messageId: '<m1@x.example>', intakeAddress: 'finance@intake.example', body: '7bit' },
    ]);
    expect(unjournal(offered[1]!.raw!).recipients).toEqual(['bob@finance.example.org']);
    expect(decisions).toEqual([['lab', 'skipped', 1], ['DEFAULT', 'journaled', 1], ['finance', 'journaled', 1]]);
    expect(logger.matching(/^Q1: /)).toEqual([
      'Q1: not journaled for 1 recipient(s) of policy lab: tdc = no',
      'Q1: journal copy Q1.1 for 1 recipient(s) (policy DEFAULT) to global@intake.example',
      'Q1: journal copy Q1.2 for 1 recipient(s) (policy finance) to finance@intake.example',
    ]);
  });

  it('skip_if_header: a marked message is not journaled for the policies whose rule matches, and counted apart', () => {
    const { journaler, logger, offered, decisions } = setup();
    journaler.handle(makeMessage({ queueId: 'Q2', recipients: RCPTS, headers: [{ name: 'x-spam-flag', value: ' yes' }] }));
    expect(offered.map((o) => o.copy.intakeAddress)).toEqual(['global@intake.example']);
    expect(decisions).toContainEqual(['finance', 'skipped_header', 1]);
    expect(logger.matching(/skip_if_header/)).toEqual(['Q2: not journaled for 1 recipient(s) of policy finance: skip_if_header X-Spam-Flag: ^YES matched']);

    journaler.handle(makeMessage({ queueId: 'Q3', recipients: RCPTS, headers: [{ name: 'X-Virus-Status', value: ' Infected: EICAR found' }] }));
    expect(offered.map((o) => o.copy.id)).toEqual(['Q2.1']);
    expect(logger.matching(/^Q3: not journaled/).sort()).toEqual([
      'Q3: not journaled for 1 recipient(s) of policy DEFAULT: skip_if_header X-Virus-Status: ^Infected matched',
      'Q3: not journaled for 1 recipient(s) of policy finance: skip_if_header X-Virus-Status: ^Infected[:,] .{0,200}(found|detected) matched',
      'Q3: not journaled for 1 recipient(s) of policy lab: tdc = no',
    ]);
  });

  it('an unmarked message, or a rule header with a value that does not match, is journaled', () => {
    const { journaler, offered } = setup();
    journaler.handle(makeMessage({ queueId: 'Q4', recipients: ['bob@finance.example.org'], headers: [{ name: 'X-Spam-Flag', value: ' NO' }] }));
    journaler.handle(makeMessage({ queueId: 'Q5', recipients: ['bob@finance.example.org'], headers: [{ name: 'X-Spam-Flagged', value: ' YES' }] }));
    expect(offered.map((o) => o.copy.id)).toEqual(['Q4.1', 'Q5.1']);
  });

  it('a copy the sink refuses is never built; a message with lines over 998 octets is a binary copy', () => {
    const refused = setup({ accept: false });
    refused.journaler.handle(makeMessage({ queueId: 'Q6' }));
    expect(refused.offered).toHaveLength(1);
    expect(refused.offered[0]!.raw).toBeUndefined();
    const { journaler, offered } = setup();
    journaler.handle(makeMessage({ queueId: 'Q7', body: [Buffer.from(`${'x'.repeat(1200)}\r\n`)] }));
    expect(offered[0]!.copy.body).toBe('binary');
    expect(offered[0]!.minBytes).toBe(1202);
  });

  it('whole-message decisions: outgoing, oversized, journaling off', () => {
    const { journaler, logger, offered, decisions } = setup();
    journaler.handle(makeMessage({ queueId: 'Q8', macros: { daemon_name: 'ORIGINATING' } }));
    journaler.handle(makeMessage({ queueId: 'Q9', oversized: true }));
    expect(offered).toEqual([]);
    expect(decisions).toEqual([['(none)', 'not_journaled', 1], ['(none)', 'oversized', 1]]);
    expect(logger.matching(/^Q8: /)).toEqual(['Q8: not journaled: outgoing: daemon_name ORIGINATING is an outgoing listener']);
  });

  it('a bug of ours costs the copy, never throws, and is logged', () => {
    const { journaler, logger, decisions } = setup({ conf: { ...config(), milter: { ...config().milter, hostname: 'bad host\r\n' } } });
    expect(() => journaler.handle(makeMessage({ queueId: 'QA' }))).not.toThrow();
    expect(decisions).toContainEqual(['(none)', 'error', 1]);
    expect(logger.matching(/^QA: journal copy not made: internal error/)).toHaveLength(1);
  });

  it('a message without queue id gets a fallback one', () => {
    const { journaler, offered } = setup();
    journaler.handle(makeMessage({ queueId: '' }));
    expect(offered[0]!.copy.id).toMatch(/^NOQUEUE-[0-9a-z]+-1\.1$/);
  });
});
