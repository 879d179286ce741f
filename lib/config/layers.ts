/**
 * Raw sections → the Config for THIS machine: defaults, [tdc] → [group NAME] → [machine NAME] layering
 * with the source of every setting, policy checks, cross-key checks, then a deep freeze.
 * Then the load-time reads (CA bundle, socket directory) through the injected ConfigIo.
 * Pure apart from os.hostname() as the last-resort host name and that ConfigIo; imports config files and util types.
 */
import * as os from 'node:os';
import * as path from 'node:path';
import type { Problem, RawConfig, RawEntry, RawSection } from './parser';
import { quote } from './parser';
import { defaultValue, findKey, keysOf, type SectionKind } from './schema';
import type { Config, DirectionConfig, MilterConfig, Policy, TdcConfig } from './types';
import { checkListenDirectory, checkLogFileDirectory, checkSocketGroup, NODE_IO, readCaBundle, type ConfigIo } from './load-time';
import { isHostname, type ListenAddress } from '../util/net-address';

interface Layer {
  label: string;
  section: RawSection | undefined;
}

interface Resolved {
  values: Record<string, unknown>;
  entries: Record<string, RawEntry | undefined>;
  sources: Record<string, string>;
  /** Index in the stack of the layer each set key came from (higher = more specific). */
  depth: Record<string, number>;
  /** Keys some layer set to a bad value (already reported; checks on them are skipped). */
  bad: Set<string>;
}

export interface BuildOptions {
  fileName: string;
  /** The system host name; default os.hostname(). A `hostname` in the file wins over it. */
  hostname?: string;
  /** The file system for the CA bundle and the socket directory; default node:fs. */
  io?: ConfigIo;
}

function singleton(raw: RawConfig, kind: SectionKind): RawSection | undefined {
  return raw.sections.find((s) => s.kind === kind);
}

function resolve(kind: SectionKind, layers: Layer[], file: string): Resolved {
  const out: Resolved = { values: {}, entries: {}, sources: {}, depth: {}, bad: new Set() };
  for (const layer of layers) for (const k of layer.section?.bad ?? []) out.bad.add(k);
  for (const spec of keysOf(kind)) {
    out.values[spec.field] = defaultValue(spec);
    out.sources[`${kind}.${spec.key}`] = 'default';
    for (const [i, layer] of layers.entries()) {
      const e = layer.section?.entries.get(spec.key);
      if (!e) continue;
      out.values[spec.field] = e.value;
      out.entries[spec.key] = e;
      out.depth[spec.key] = i;
      out.sources[`${kind}.${spec.key}`] = `${layer.label} (${file}:${e.line})`;
    }
  }
  return out;
}

/** Build the Config; problems of this stage are appended to `problems`. */
export function buildConfig(raw: RawConfig, opts: BuildOptions, problems: Problem[]): Config | undefined {
  // Sources name the file briefly: 'milter.conf:12'; '(embedded default)' becomes 'embedded default:3'.
  const file = path.basename(opts.fileName).replace(/^\((.*)\)$/, '$1');
  const milterSec = singleton(raw, 'milter');
  const milter = resolve('milter', [{ label: 'milter', section: milterSec }], file);
  if (milter.values['hostname'] === undefined) {
    const system = opts.hostname ?? os.hostname();
    milter.values['hostname'] = system;
    milter.sources['milter.hostname'] = opts.hostname === undefined ? 'default (system host name)' : 'default (host name)';
    // The journal's From/Message-ID and EHLO take only a host name: refuse now what would fail every copy.
    if (!isHostname(system)) {
      problems.push({ line: 0, key: 'hostname', message: `expected a host name such as gw1.example.org (the system host name is not one; set hostname), got ${JSON.stringify(system)}` });
    }
  }
  // A fully qualified name may be written with its root dot; the headers and EHLO want it without.
  milter.values['hostname'] = String(milter.values['hostname']).replace(/\.$/, '');
  const hostname = String(milter.values['hostname']);
  const groupName = milter.values['group'] as string | undefined;

  const groups = raw.sections.filter((s) => s.kind === 'group');
  const group = groupName === undefined ? undefined : groups.find((g) => g.name.toLowerCase() === groupName.toLowerCase());
  if (groupName !== undefined && !group) {
    const e = milter.entries['group']!;
    problems.push({ line: e.line, key: 'group', message: `expected a [group ${groupName}] section, got none` });
  }
  const hostKey = hostname.toLowerCase().replace(/\.$/, '');
  const machine = raw.sections.find((s) => s.kind === 'machine' && s.name.toLowerCase().replace(/\.$/, '') === hostKey);

  const policies = buildPolicies(raw, file, problems);
  const base: Layer = { label: 'tdc', section: singleton(raw, 'tdc') };
  const layerOf = (s: RawSection): Layer => ({ label: `${s.kind} ${s.name}`, section: s });
  const own = [base, ...(group ? [layerOf(group)] : []), ...(machine ? [layerOf(machine)] : [])];
  // Cross-key checks on [tdc] alone, on [tdc]+each group, and on this machine's own stack.
  const stacks = [[base], ...groups.map((g) => [base, layerOf(g)]), own];
  let tdc: Resolved | undefined;
  for (const stack of stacks) tdc = checkTdc(resolve('tdc', stack, file), policies.list, raw, problems);

  const direction = resolve('direction', [{ label: 'direction', section: singleton(raw, 'direction') }], file);
  loadTimeChecks(milter, tdc, opts.io ?? NODE_IO, problems);
  if (problems.length > 0 || !tdc) return undefined;
  const config: Config = {
    milter: milter.values as unknown as MilterConfig,
    tdc: tdc.values as unknown as TdcConfig,
    direction: direction.values as unknown as DirectionConfig,
    policies: policies.list,
    sources: { ...milter.sources, ...tdc.sources, ...direction.sources, ...policies.sources },
  };
  return deepFreeze(config);
}

/** What the daemon would find only when it uses them: read the CA bundle now, check the socket's directory and group, log_file's directory. */
function loadTimeChecks(milter: Resolved, tdc: Resolved | undefined, io: ConfigIo, problems: Problem[]): void {
  const listen = milter.entries['listen'];
  if (listen !== undefined) {
    const why = checkListenDirectory(listen.value as ListenAddress, listen.text, io);
    if (why !== undefined) problems.push({ line: listen.line, key: 'listen', message: why });
  }
  const group = milter.entries['socket_group'];
  if (group !== undefined && group.value !== undefined) {
    const why = checkSocketGroup(milter.values['listen'] as ListenAddress, group.value as string, io);
    if (why !== undefined) problems.push({ line: group.line, key: 'socket_group', message: why });
  }
  const logFile = milter.entries['log_file'];
  if (logFile !== undefined && typeof logFile.value === 'string') {
    const why = checkLogFileDirectory(logFile.value, io);
    if (why !== undefined) problems.push({ line: logFile.line, key: 'log_file', message: why });
  }
  const caFile = tdc?.values['tlsCaFile'] as string | undefined;
  if (tdc === undefined || caFile === undefined) return;
  const ca = readCaBundle(caFile, io);
  if (ca.ok) tdc.values['tlsCa'] = ca.pem;
  else problems.push({ line: tdc.entries['tls_ca_file']?.line ?? 0, key: 'tls_ca_file', message: ca.message });
}

/** min ≤ max connections, retry < age, and "journaling wanted but no global intake address". */
function checkTdc(r: Resolved, policies: Policy[], raw: RawConfig, problems: Problem[]): Resolved {
  const v = r.values;
  const e = r.entries;
  const num = (k: string) => v[k] as number;
  const bad = (...keys: string[]) => keys.some((k) => r.bad.has(k));
  if (!bad('min_connections', 'max_connections') && num('minConnections') > num('maxConnections')) {
    // Blame the key set in the most specific layer (the other one may be a default).
    const atMin = (r.depth['min_connections'] ?? -1) >= (r.depth['max_connections'] ?? -1);
    problems.push(atMin
      ? { line: e['min_connections']!.line, key: 'min_connections', message: `expected at most max_connections (${num('maxConnections')}), got ${num('minConnections')}` }
      : { line: e['max_connections']!.line, key: 'max_connections', message: `expected at least min_connections (${num('minConnections')}), got ${num('maxConnections')}` });
  }
  if (!bad('retry_delay', 'max_queue_age') && num('retryDelay') >= num('maxQueueAge')) {
    const atRetry = (r.depth['retry_delay'] ?? -1) >= (r.depth['max_queue_age'] ?? -1);
    const age = e['max_queue_age']?.text ?? findKey('tdc', 'max_queue_age')!.default;
    const retry = e['retry_delay']?.text ?? findKey('tdc', 'retry_delay')!.default;
    problems.push(atRetry
      ? { line: e['retry_delay']!.line, key: 'retry_delay', message: `expected less than max_queue_age (${age}), got ${quote(retry)}` }
      : { line: e['max_queue_age']!.line, key: 'max_queue_age', message: `expected more than retry_delay (${retry}), got ${quote(age)}` });
  }
  const intake = v['intakeAddress'] as string;
  const globalUser = policies.find((p) => p.tdc === 'global');
  const anyCustom = policies.some((p) => p.tdc === 'custom');
  const enabledEntry = e['enabled'];
  const wanted = enabledEntry ? enabledEntry.value === true : intake !== '' || anyCustom;
  const policyBad = raw.sections.some((s) => s.kind === 'policy' && s.bad.has('tdc'));
  if (wanted && intake === '' && globalUser && !bad('enabled', 'intake_address') && !policyBad) {
    const policySec = raw.sections.find((s) => s.kind === 'policy' && s.name === globalUser.name);
    const firstCustom = raw.sections.find((s) => s.kind === 'policy' && s.entries.get('tdc')?.value === 'custom');
    const at = enabledEntry ?? policySec?.entries.get('tdc');
    const sec = policySec ?? firstCustom;
    problems.push({
      line: at?.line ?? sec?.line ?? 1,
      key: at?.spec.key ?? (sec ? `[policy ${sec.name}]` : 'intake_address'),
      message: `expected [tdc] intake_address to be set because policy ${globalUser.name} uses tdc = global` +
        `${policySec ? '' : ' (implicitly; add [policy DEFAULT] tdc = no to journal only custom policies)'}, got none`,
    });
  }
  if (!enabledEntry) {
    v['enabled'] = wanted;
    r.sources['tdc.enabled'] = wanted ? 'default' : 'default (no intake address configured)';
  }
  return r;
}

function buildPolicies(raw: RawConfig, file: string, problems: Problem[]): { list: Policy[]; sources: Record<string, string> } {
  const list: Policy[] = [];
  const sources: Record<string, string> = {};
  let defaultAt: number | undefined;
  for (const s of raw.sections.filter((x) => x.kind === 'policy')) {
    const label = `[policy ${s.name}]`;
    const get = <T>(key: string, dflt: T): T => (s.entries.has(key) ? (s.entries.get(key)!.value as T) : dflt);
    const p: Policy = { name: s.name, recipients: get('recipients', []), senders: get('senders', []), tdc: get('tdc', 'global') };
    const skipRules = get<Policy['skipIfHeader']>('skip_if_header', []);
    if (skipRules !== undefined && skipRules.length > 0) p.skipIfHeader = skipRules;
    const intake = get<string | undefined>('intake_address', undefined);
    if (intake !== undefined) p.intakeAddress = intake;
    if (defaultAt !== undefined) {
      problems.push({ line: s.line, key: label, message: `expected [policy DEFAULT] (line ${defaultAt}) to be the last policy, got ${label} after it` });
    }
    if (s.name === 'DEFAULT') {
      defaultAt = s.line;
      for (const k of ['recipients', 'senders']) {
        const e = s.entries.get(k);
        if (e && e.text !== '') problems.push({ line: e.line, key: k, message: `expected no ${k} in [policy DEFAULT] (it matches everyone), got ${quote(e.text)}` });
      }
    } else if (p.recipients.length === 0 && p.senders.length === 0 && !s.bad.has('recipients') && !s.bad.has('senders')) {
      problems.push({ line: s.line, key: label, message: 'expected recipients or senders (a policy matching everyone must be [policy DEFAULT]), got neither' });
    }
    if (p.tdc === 'custom' && intake === undefined && !s.bad.has('intake_address')) {
      const e = s.entries.get('tdc')!;
      problems.push({ line: e.line, key: 'tdc', message: `expected intake_address in ${label} with tdc = custom, got none` });
    }
    if (p.tdc !== 'custom' && intake !== undefined && !s.bad.has('tdc')) {
      const e = s.entries.get('intake_address')!;
      problems.push({ line: e.line, key: 'intake_address', message: `expected no intake_address with tdc = ${p.tdc} (only tdc = custom uses one), got ${quote(e.text)}` });
    }
    list.push(p);
    sources[`policy ${s.name}`] = `${file}:${s.line}`;
  }
  if (defaultAt === undefined) {
    list.push({ name: 'DEFAULT', recipients: [], senders: [], tdc: 'global' });
    sources['policy DEFAULT'] = 'implicit';
  }
  return { list, sources };
}

/** Freeze an object graph (plain objects and arrays; a network's bytes stay as they are: typed arrays cannot be frozen). */
export function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === 'object' && !ArrayBuffer.isView(value) && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value as Record<string, unknown>)) deepFreeze(v);
  }
  return value;
}
