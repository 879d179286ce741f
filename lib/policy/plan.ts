/**
 * The journal plan of one message: nothing when journaling is off, the mail is outgoing, is itself a
 * journal report or is oversized; else every envelope recipient takes the first matching policy, a
 * policy's skip_if_header rules may skip its recipients, and the rest are grouped into one copy per
 * intake address. Recipient and sender patterns come parsed in the Config; only the skip_if_header
 * expressions are compiled here (once per loaded Config). Imports config (types) and message only.
 */
import type { Config, Policy } from '../config';
import type { CapturedMessage } from '../message';
import { matchesAnySplit, splitEnvelopeAddress, type SplitAddress } from './address';
import { classifyDirection } from './direction';

export interface JournalCopyPlan {
  intakeAddress: string;
  /** Names of the policies whose recipients this copy covers, first appearance first. */
  policies: string[];
  recipients: string[];
}

export interface SkippedRecipients {
  policy: string;
  recipients: string[];
  reason: string;
  /** True when a skip_if_header rule of the policy matched (the mail will not be delivered as is). */
  byHeader?: boolean;
}

export interface JournalPlan {
  copies: JournalCopyPlan[];
  skipped: SkippedRecipients[];
  /** Set when the whole message is not journaled (disabled, outgoing, journal report, oversized). */
  reason?: string;
}

/** The header our journal copies carry: `X-TDC-Journal: <hostname>; queue-id=…`. */
export const JOURNAL_MARKER_HEADER = 'X-TDC-Journal';

interface CompiledRule {
  /** Lower-case header name. */
  name: string;
  regex: RegExp;
  /** For the log line: the rule as written. */
  text: string;
}

interface CompiledPolicy {
  policy: Policy;
  skipRules: CompiledRule[];
}

function compileRules(policy: Policy): CompiledRule[] {
  return (policy.skipIfHeader ?? []).flatMap((r) => {
    try {
      return [{ name: r.header.toLowerCase(), regex: new RegExp(r.pattern, 'i'), text: `${r.header}: ${r.pattern}` }];
    } catch {
      return []; // the config loader refuses bad expressions; a hand-built Config may still hold one
    }
  });
}

const cache = new WeakMap<readonly Policy[], CompiledPolicy[]>();

function compiled(policies: readonly Policy[]): CompiledPolicy[] {
  let c = cache.get(policies);
  if (!c) {
    c = policies.map((policy) => ({ policy, skipRules: compileRules(policy) }));
    cache.set(policies, c);
  }
  return c;
}

function matchCompiled(recipient: string, sender: SplitAddress | undefined, policies: readonly Policy[]): CompiledPolicy | undefined {
  const rcpt = splitEnvelopeAddress(recipient);
  return compiled(policies).find(({ policy: p }) =>
    (p.recipients.length === 0 || matchesAnySplit(rcpt, p.recipients)) && (p.senders.length === 0 || matchesAnySplit(sender, p.senders)));
}

/** First policy whose recipients (empty = any) match the recipient and whose senders (empty = any) match the sender. */
export function matchPolicy(recipient: string, sender: string, policies: readonly Policy[]): Policy | undefined {
  return matchCompiled(recipient, splitEnvelopeAddress(sender), policies)?.policy;
}

/**
 * The first skip_if_header rule that a header of the message matches, as written; undefined when
 * none does. Every occurrence of the header counts; its value is unfolded and trimmed first.
 */
function matchingSkipRule(msg: Pick<CapturedMessage, 'headers'>, rules: readonly CompiledRule[]): string | undefined {
  for (const rule of rules) {
    for (const h of msg.headers) {
      if (h.name.toLowerCase() !== rule.name) continue;
      if (rule.regex.test(h.value.replace(/\r?\n(?=[ \t])/g, '').trim())) return rule.text;
    }
  }
  return undefined;
}

/**
 * True when the message is one of *this gateway's* journal copies coming back: our marker naming
 * this hostname, sent from the null sender as all our copies are. Anyone can write a journal header
 * (ours or X-MS-Journal-Report), so a marker alone never lets outside mail skip the scan.
 */
function isOwnJournalCopy(msg: CapturedMessage, hostname: string): boolean {
  if (msg.sender.address !== '') return false;
  const marker = JOURNAL_MARKER_HEADER.toLowerCase();
  return msg.headers.some(
    (h) => h.name.toLowerCase() === marker && (h.value.split(';')[0] ?? '').trim().toLowerCase() === hostname.toLowerCase(),
  );
}

export function planJournal(msg: CapturedMessage, config: Config): JournalPlan {
  if (!config.tdc.enabled) return { copies: [], skipped: [], reason: 'journaling is disabled' };
  const direction = classifyDirection(msg, config.direction);
  if (!direction.incoming) return { copies: [], skipped: [], reason: `outgoing: ${direction.reason}` };
  if (isOwnJournalCopy(msg, config.milter.hostname)) {
    return { copies: [], skipped: [], reason: `message is itself a journal copy of this gateway (${JOURNAL_MARKER_HEADER} header, null sender)` };
  }
  if (msg.oversized) {
    return { copies: [], skipped: [], reason: `message of ${msg.bodyBytes} body bytes is over max_message_size (${config.milter.maxMessageSize})` };
  }

  const intakes = new Set([config.tdc.intakeAddress, ...config.policies.map((p) => p.intakeAddress ?? '')].filter((a) => a !== '').map((a) => a.toLowerCase()));
  const copies = new Map<string, JournalCopyPlan>();
  const skipped = new Map<string, SkippedRecipients>();
  const seen = new Set<string>();
  const skip = (policy: string, recipient: string, reason: string, byHeader = false) => {
    const key = `${policy}\0${reason}`;
    const s = skipped.get(key) ?? { policy, recipients: [], reason, ...(byHeader ? { byHeader } : {}) };
    s.recipients.push(recipient);
    skipped.set(key, s);
  };
  // Each policy's rules are tried once per message, not once per recipient.
  const ruleHit = new Map<CompiledPolicy, string | undefined>();
  const sender = splitEnvelopeAddress(msg.sender.address);

  for (const { address } of msg.recipients) {
    const lower = address.toLowerCase();
    if (seen.has(lower)) continue;
    seen.add(lower);
    const match = matchCompiled(address, sender, config.policies);
    const policy = match?.policy;
    const name = policy?.name ?? 'DEFAULT';
    if (intakes.has(lower)) {
      skip(name, address, 'recipient is an intake address (loop safety)');
      continue;
    }
    if (!policy || policy.tdc === 'no') {
      skip(name, address, 'tdc = no');
      continue;
    }
    if (match!.skipRules.length > 0) {
      if (!ruleHit.has(match!)) ruleHit.set(match!, matchingSkipRule(msg, match!.skipRules));
      const rule = ruleHit.get(match!);
      if (rule !== undefined) {
        skip(name, address, `skip_if_header ${rule} matched`, true);
        continue;
      }
    }
    const intake = policy.tdc === 'custom' ? policy.intakeAddress ?? '' : config.tdc.intakeAddress;
    if (intake === '') {
      skip(name, address, policy.tdc === 'custom' ? 'policy has no intake address' : 'no global intake address');
      continue;
    }
    const key = intake.toLowerCase();
    const copy = copies.get(key) ?? { intakeAddress: intake, policies: [], recipients: [] };
    copies.set(key, copy);
    copy.recipients.push(address);
    if (!copy.policies.includes(name)) copy.policies.push(name);
  }
  return { copies: [...copies.values()], skipped: [...skipped.values()] };
}
