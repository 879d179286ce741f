/**
 * `tdc-milter explain`: the direction, each recipient's policy and decision, and the copy each intake
 * address would get, for a message described on the command line, decided by lib/policy; sends nothing.
 * The formatter is pure. Imports config, message, policy and util; never milter, journal or forwarder.
 */
import { parseArgs } from 'node:util';
import { parseStrict } from './args';
import type { Config, ConfigResult } from '../config';
import { unbracket, type CapturedMessage, type HeaderField } from '../message';
import { classifyDirection, matchPolicy, planJournal, type JournalPlan } from '../policy';
import { describeError } from '../util/errors';
import { parseIp } from '../util/ip-network';

export interface ExplainInput {
  from: string;
  rcpts: string[];
  clientIp: string | undefined;
  daemonName: string | undefined;
  auth: string | undefined;
  /** As typed: `Name: value`. */
  headers: string[];
}

export interface RecipientDecision {
  recipient: string;
  policy: string;
  tdc: string;
  /** `journaled to ADDRESS`, or `not journaled: REASON`. */
  decision: string;
}

export interface Explanation {
  input: ExplainInput;
  configName: string;
  journaling: boolean;
  globalIntake: string;
  direction: { incoming: boolean; reason: string };
  plan: JournalPlan;
  recipients: RecipientDecision[];
}

export interface ExplainResult {
  exitCode: number;
  stdout: string;
  stderr: string;
}

export const EXPLAIN_USAGE = `usage: tdc-milter explain --from ADDRESS --rcpt ADDRESS [--rcpt ADDRESS ...]
                          [--client-ip IP] [--daemon-name NAME] [--auth USER]
                          [--header 'Name: value' ...] [--config FILE]
  --from         envelope sender; '' or '<>' for the null sender
  --rcpt         envelope recipient (repeat for several)
  --client-ip    the SMTP client's address ({client_addr})
  --daemon-name  the MTA listener's milter_macro_daemon_name ({daemon_name}), e.g. ORIGINATING
  --auth         the SASL login name ({auth_authen}) of an authenticated client
  --header       a header of the message (repeat for several)
Prints the direction, each recipient's policy and decision, and which intake address each journal
copy would go to. Nothing is sent.
`;

/** The options, checked; throws an Error with the problem. */
export function parseExplainArgs(argv: string[]): { input: ExplainInput; configPath: string | undefined; help: boolean } {
  const { values } = parseStrict(() => parseArgs({
    args: argv,
    strict: true,
    allowPositionals: false,
    options: {
      from: { type: 'string' },
      rcpt: { type: 'string', multiple: true },
      'client-ip': { type: 'string' },
      'daemon-name': { type: 'string' },
      auth: { type: 'string' },
      header: { type: 'string', multiple: true },
      config: { type: 'string', short: 'c' },
      help: { type: 'boolean', short: 'h' },
    },
  }));
  const input: ExplainInput = {
    from: unbracket(values.from ?? ''),
    rcpts: (values.rcpt ?? []).map(unbracket),
    clientIp: values['client-ip'],
    daemonName: values['daemon-name'],
    auth: values.auth,
    headers: values.header ?? [],
  };
  if (values.help === true) return { input, configPath: values.config, help: true };
  if (values.from === undefined) throw new Error("--from is required ('' for the null sender)");
  if (input.rcpts.length === 0) throw new Error('at least one --rcpt is required');
  for (const r of input.rcpts) if (r === '') throw new Error('--rcpt: expected an address, got an empty one');
  if (input.clientIp !== undefined && parseIp(input.clientIp) === undefined) {
    throw new Error(`--client-ip: expected an IPv4 or IPv6 address, got "${input.clientIp}"`);
  }
  for (const h of input.headers) {
    if (!/^[\x21-\x39\x3b-\x7e]+:/.test(h)) throw new Error(`--header: expected 'Name: value', got "${h}"`);
  }
  return { input, configPath: values.config, help: false };
}

/** The message as the MTA would hand it to the milter (Postfix: header values keep their leading space). */
export function messageFor(input: ExplainInput): CapturedMessage {
  const headers: HeaderField[] = input.headers.map((h) => {
    const colon = h.indexOf(':');
    return { name: h.slice(0, colon), value: h.slice(colon + 1) };
  });
  const ip = input.clientIp === undefined ? undefined : parseIp(input.clientIp);
  return {
    queueId: 'EXPLAIN',
    ...(input.daemonName !== undefined ? { listener: input.daemonName } : {}),
    ...(input.auth !== undefined ? { authenticatedUser: input.auth } : {}),
    ...(input.clientIp !== undefined ? { clientIp: input.clientIp } : {}),
    client: ip === undefined ? undefined : { hostname: `[${input.clientIp}]`, family: ip.family === 6 ? 'inet6' : 'inet', address: input.clientIp },
    helo: undefined,
    sender: { address: input.from, args: [] },
    recipients: input.rcpts.map((address) => ({ address, args: [] })),
    headers,
    headerValuesExact: true,
    body: [],
    bodyBytes: 0,
    oversized: false,
  };
}

/** Decide, as the daemon does at end-of-body. */
export function explain(config: Config, configName: string, input: ExplainInput): Explanation {
  const msg = messageFor(input);
  const plan = planJournal(msg, config);
  const direction = classifyDirection(msg, config.direction);
  const seen = new Set<string>();
  const recipients = input.rcpts.map((recipient): RecipientDecision => {
    const policy = matchPolicy(recipient, input.from, config.policies);
    const row = { recipient, policy: policy?.name ?? 'DEFAULT', tdc: policy?.tdc ?? 'no' };
    const lower = recipient.toLowerCase();
    if (seen.has(lower)) return { ...row, decision: 'not journaled: listed twice; the first one counts' };
    seen.add(lower);
    if (plan.reason !== undefined) return { ...row, decision: `not journaled: ${plan.reason}` };
    const copy = plan.copies.find((c) => c.recipients.includes(recipient));
    if (copy) return { ...row, decision: `journaled to ${copy.intakeAddress}` };
    const skipped = plan.skipped.find((s) => s.recipients.includes(recipient));
    return { ...row, decision: `not journaled: ${skipped?.reason ?? 'no decision (please report this)'}` };
  });
  return {
    input,
    configName,
    journaling: config.tdc.enabled,
    globalIntake: config.tdc.intakeAddress,
    direction,
    plan,
    recipients,
  };
}

function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return rows.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join('  ').trimEnd() + '\n').join('');
}

/** The explanation as the admin reads it. Pure. */
export function formatExplanation(e: Explanation): string {
  const i = e.input;
  const out: string[] = [];
  out.push(`configuration: ${e.configName}; journaling ${e.journaling ? `on, global intake ${e.globalIntake || '(none)'}` : 'off'}\n`);
  out.push(
    `message: from ${i.from === '' ? '<> (null sender)' : i.from}, client ${i.clientIp ?? '(not given)'}, ` +
      `daemon_name ${i.daemonName ?? '(not given)'}, ${i.auth === undefined ? 'not authenticated' : `authenticated as ${i.auth}`}` +
      `${i.headers.length > 0 ? `, ${i.headers.length} header(s)` : ''}\n`,
  );
  out.push(`direction: ${e.direction.incoming ? 'incoming' : 'outgoing'} (${e.direction.reason})\n`);
  if (e.plan.reason !== undefined) out.push(`whole message: not journaled: ${e.plan.reason}\n`);
  out.push('\n');
  out.push(table([['recipient', 'policy', 'tdc', 'decision'], ...e.recipients.map((r) => [r.recipient, r.policy, r.tdc, r.decision])]));
  out.push('\n');
  if (e.plan.copies.length === 0) {
    out.push('journal copies: none\n');
  } else {
    out.push(`journal copies: ${e.plan.copies.length} (one per intake address)\n`);
    e.plan.copies.forEach((c, n) => {
      out.push(`  copy ${n + 1} to ${c.intakeAddress} (policy ${c.policies.join(', ')}) for ${c.recipients.length} recipient(s): ${c.recipients.join(', ')}\n`);
    });
  }
  out.push('nothing was sent\n');
  return out.join('');
}

/** `tdc-milter explain …`: `load` reads the configuration (an explicit --config, or the default choice). */
export function explainCommand(argv: string[], load: (configPath: string | undefined) => { result: ConfigResult; name: string }): ExplainResult {
  let parsed: ReturnType<typeof parseExplainArgs>;
  try {
    parsed = parseExplainArgs(argv);
  } catch (err) {
    return { exitCode: 2, stdout: '', stderr: `tdc-milter explain: ${describeError(err)}\n${EXPLAIN_USAGE}` };
  }
  if (parsed.help) return { exitCode: 0, stdout: EXPLAIN_USAGE, stderr: '' };
  const { result, name } = load(parsed.configPath);
  if (!result.ok) return { exitCode: 1, stdout: '', stderr: result.errors.map((e) => `${e}\n`).join('') };
  return { exitCode: 0, stdout: formatExplanation(explain(result.config, name, parsed.input)), stderr: '' };
}
