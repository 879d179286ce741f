/**
 * `tdc-milter config`: the settings effective on this machine as milter.conf text (it parses back to
 * the same settings), each line commented with the layer it came from. Pure; imports only config files.
 */
import { findKey, formatValue, keysOf, type SectionKind } from './schema';
import type { Config } from './types';

const COLUMN = 44;

function line(setting: string, source: string | undefined): string {
  return source === undefined ? setting : `${setting.padEnd(COLUMN - 1)} # ${source}`;
}

function section(config: Config, kind: Exclude<SectionKind, 'policy'>): string[] {
  const values = config[kind] as unknown as Record<string, unknown>;
  const out = [`[${kind}]`];
  for (const spec of keysOf(kind)) {
    const v = values[spec.field];
    out.push(line(`${spec.key} = ${formatValue(spec, v)}`.trimEnd(), config.sources[`${kind}.${spec.key}`]));
  }
  return out;
}

/** The effective configuration, one `key = value  # source` line per setting. */
export function describeEffective(config: Config): string {
  const m = config.milter;
  const out = [
    `# tdc-milter effective configuration for ${m.hostname}${m.group ? ` (group ${m.group})` : ''}`,
    `# journaling: ${config.tdc.enabled ? 'on' : 'off'}`,
    ...section(config, 'milter'), '',
    ...section(config, 'tdc'), '',
    // The group's values are already merged into [tdc] above; the empty section keeps the text valid.
    ...(m.group ? [line(`[group ${m.group}]`, 'merged into [tdc] above'), ''] : []),
    ...section(config, 'direction'),
  ];
  for (const p of config.policies) {
    out.push('', line(`[policy ${p.name}]`, config.sources[`policy ${p.name}`]));
    if (p.recipients.length > 0) out.push(`recipients = ${formatValue(findKey('policy', 'recipients')!, p.recipients)}`);
    if (p.senders.length > 0) out.push(`senders = ${formatValue(findKey('policy', 'senders')!, p.senders)}`);
    out.push(`tdc = ${p.tdc}`);
    if (p.intakeAddress !== undefined) out.push(`intake_address = ${p.intakeAddress}`);
    for (const r of p.skipIfHeader ?? []) out.push(`skip_if_header = ${r.header}: ${r.pattern}`);
  }
  return `${out.join('\n')}\n`;
}
