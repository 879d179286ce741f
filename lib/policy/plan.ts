/**
 * The journal plan of one message: nothing when journaling is off, the mail is outgoing, is itself a
 * journal report or is oversized; else every envelope recipient takes the first matching policy and the
 * recipients are grouped into one copy per intake address. Imports config (types, values) and message only.
 */
import type { AddressPattern } from '../config/values';
import type { Config, Policy } from '../config';
import type { CapturedMessage } from '../message';
import { compilePatterns, matchesAny } from './address';
import { classifyDirection } from './direction';

export interface JournalCopyPlan {
  intakeAddress: string;
  /** Names of the policies whose recipients this copy covers, first appearance first. */
  policies: string[];
  recipients: string[];
}

export interface JournalPlan {
  copies: JournalCopyPlan[];
  skipped: { policy: string; recipients: string[]; reason: string }[];
  /** Set when the whole message is not journaled (disabled, outgoing, journal report, oversized). */
  reason?: string;
}

/** The header our journal copies carry: `X-TDC-Journal: <hostname>; queue-id=…`. */
export const JOURNAL_MARKER_HEADER = 'X-TDC-Journal';

interface CompiledPolicy {
  policy: Policy;
  recipients: AddressPattern[];
  senders: AddressPattern[];
}

const cache = new WeakMap<readonly Policy[], CompiledPolicy[]>();

function compiled(policies: readonly Policy[]): CompiledPolicy[] {
  let c = cache.get(policies);
  if (!c) {
    c = policies.map((policy) => ({ policy, recipients: compilePatterns(policy.recipients), senders: compilePatterns(policy.senders) }));
    cache.set(policies, c);
  }
  return c;
}

/** First policy whose recipients (empty = any) match the recipient and whose senders (empty = any) match the sender. */
export function matchPolicy(recipient: string, sender: string, policies: readonly Policy[]): Policy | undefined {
  return compiled(policies).find(
    (p) => (p.recipients.length === 0 || matchesAny(recipient, p.recipients)) && (p.senders.length === 0 || matchesAny(sender, p.senders)),
  )?.policy;
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
  const skipped = new Map<string, { policy: string; recipients: string[]; reason: string }>();
  const seen = new Set<string>();
  const skip = (policy: string, recipient: string, reason: string) => {
    const key = `${policy}\0${reason}`;
    const s = skipped.get(key) ?? { policy, recipients: [], reason };
    s.recipients.push(recipient);
    skipped.set(key, s);
  };

  for (const { address } of msg.recipients) {
    const lower = address.toLowerCase();
    if (seen.has(lower)) continue;
    seen.add(lower);
    const policy = matchPolicy(address, msg.sender.address, config.policies);
    const name = policy?.name ?? 'DEFAULT';
    if (intakes.has(lower)) {
      skip(name, address, 'recipient is an intake address (loop safety)');
      continue;
    }
    if (!policy || policy.tdc === 'no') {
      skip(name, address, 'tdc = no');
      continue;
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
