/**
 * milter.conf: load, validate (every problem as `file:line: key: expected …, got …`), layer and freeze.
 * The public face of lib/config; imports util only (plus node:fs to read the file).
 */
import * as fs from 'node:fs';
import { describeError } from '../util/errors';
import { buildConfig } from './layers';
import { parseRaw, type Problem } from './parser';
import type { ConfigResult } from './types';

export type { Config, ConfigResult, DirectionConfig, LogLevelName, MilterConfig, Policy, PolicyTdc, TdcConfig } from './types';
export { describeEffective } from './describe';
export { SCHEMA, type KeySpec } from './schema';
export type { HeaderRule } from './header-rule';
export { parseAddressPattern, parseCidr, ipBytes, type AddressPattern, type Cidr } from './values';

/** The embedded default: the milter on inet:127.0.0.1:8894, journaling off until an intake address is set. */
export const DEFAULT_CONFIG_TEXT = `# tdc-milter embedded default configuration (see milter.conf.example for every key)
[milter]
listen = inet:127.0.0.1:8894

[tdc]
# No intake_address: journaling stays off. Set one to start journaling incoming mail.
intake_address =
`;

function format(fileName: string, problems: Problem[]): string[] {
  const sorted = [...problems].sort((a, b) => a.line - b.line);
  return [...new Set(sorted.map((p) => `${fileName}:${p.line}: ${p.key}: ${p.message}`))];
}

export function parseConfigText(text: string, fileName: string, opts: { hostname?: string } = {}): ConfigResult {
  const raw = parseRaw(text.replace(/^\uFEFF/, ''));
  const problems = [...raw.problems];
  const config = buildConfig(raw, { fileName, ...opts }, problems);
  if (config === undefined || problems.length > 0) return { ok: false, errors: format(fileName, problems) };
  return { ok: true, config };
}

export function loadConfigFile(path: string, opts: { hostname?: string } = {}): ConfigResult {
  let text: string;
  try {
    text = fs.readFileSync(path, 'utf8');
  } catch (err) {
    return { ok: false, errors: [`${path}:0: file: expected a readable file, got ${describeError(err)}`] };
  }
  return parseConfigText(text, path, opts);
}
