/**
 * The value of a `skip_if_header` line: `Header-Name: regular expression`, e.g. `X-Spam-Flag: ^YES`.
 * The expression is checked here, at load time, so a bad one is a `file:line` error and never a
 * failure at mail time. Pure; imports only ./values (types).
 */
import type { Parsed } from './values';

export interface HeaderRule {
  /** The header field name as written (compared case-insensitively). */
  header: string;
  /** A JavaScript regular expression, matched case-insensitively against the unfolded value. */
  pattern: string;
}

const EXPECTED = 'a header name, a colon and a regular expression (e.g. X-Spam-Flag: ^YES)';

export function parseHeaderRule(text: string): Parsed<HeaderRule> {
  const m = /^([\x21-\x39\x3b-\x7e]+)\s*:\s*(.*)$/.exec(text);
  if (!m || m[2]!.trim() === '') return { ok: false, expected: EXPECTED };
  const rule = { header: m[1]!, pattern: m[2]!.trim() };
  try {
    new RegExp(rule.pattern, 'i');
  } catch (err) {
    return { ok: false, expected: `${EXPECTED} with a valid regular expression (${(err as Error).message})` };
  }
  return { ok: true, value: rule };
}
