/**
 * milter.conf: load, validate (every problem as `file:line: key: expected …, got …`), layer and freeze.
 * The public face of lib/config; imports util only. All file I/O (this file, the CA bundle, the
 * socket directory) happens here, at load time, through ./load-time's ConfigIo.
 */
import { describeError } from '../util/errors';
import { buildConfig } from './layers';
import { parseRaw, type Problem } from './parser';
import type { ConfigResult } from './types';
import { NODE_IO, type ConfigIo } from './load-time';

export type { Config, ConfigResult, DirectionConfig, LogLevelName, MilterConfig, Policy, PolicyTdc, TdcConfig } from './types';
export { describeEffective } from './describe';
export { SCHEMA, type KeySpec } from './schema';
export type { HeaderRule } from './header-rule';
export {
  formatAddressPattern, parseAddressPattern, parseCidr, parseNetwork, ipBytes, type AddressPattern, type Cidr, type Network,
} from './values';
export { NODE_IO, type ConfigIo } from './load-time';
export type { RelaySpec } from '../util/net-address';

export interface LoadOptions {
  /** The system host name (default os.hostname()); a `hostname` in the file wins. */
  hostname?: string;
  /** The file system for the config file, the CA bundle and the socket directory (default node:fs). */
  io?: ConfigIo;
}

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

/** Parse, layer and check `text`; reads the CA bundle and checks the socket directory (through `opts.io`). */
export function parseConfigText(text: string, fileName: string, opts: LoadOptions = {}): ConfigResult {
  const raw = parseRaw(text.replace(/^\uFEFF/, ''));
  const problems = [...raw.problems];
  const config = buildConfig(raw, { fileName, ...opts }, problems);
  if (config === undefined || problems.length > 0) return { ok: false, errors: format(fileName, problems) };
  return { ok: true, config };
}

export function loadConfigFile(path: string, opts: LoadOptions = {}): ConfigResult {
  let text: string;
  try {
    text = (opts.io ?? NODE_IO).readFile(path);
  } catch (err) {
    return { ok: false, errors: [`${path}:0: file: expected a readable file, got ${describeError(err)}`], unreadable: true };
  }
  return parseConfigText(text, path, opts);
}
