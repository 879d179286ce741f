/**
 * milter.conf text → sections of typed entries with line numbers, collecting every problem
 * (unknown section or key, bad value, duplicates) instead of stopping at the first.
 * Layering and cross-key checks are in ./layers. Pure; imports only ./schema and ./values.
 */
import { findKey, keysOf, parseValue, type KeySpec, type SectionKind } from './schema';
import { isHostname, parseName } from './values';

export type RawSectionKind = SectionKind | 'group' | 'machine';

export interface RawEntry {
  spec: KeySpec;
  /** The value text as written (comment removed, continuation lines joined). */
  text: string;
  value: unknown;
  line: number;
}

export interface RawSection {
  kind: RawSectionKind;
  /** Policy, group or machine name ('DEFAULT' normalised for the default policy). */
  name: string;
  line: number;
  entries: Map<string, RawEntry>;
  /** Keys that were present with a bad value (checks depending on them are skipped). */
  bad: Set<string>;
}

export interface Problem {
  line: number;
  key: string;
  message: string;
}

export interface RawConfig {
  sections: RawSection[];
  problems: Problem[];
}

interface LogicalLine {
  line: number;
  text: string;
}

/** Quote a value for an error message (control characters escaped). */
export function quote(text: string): string {
  return JSON.stringify(text.length > 200 ? `${text.slice(0, 200)}…` : text);
}

/** Remove a comment: `#` at the start of the (trimmed) line or after whitespace. */
function stripComment(line: string): string {
  if (/^\s*#/.test(line)) return '';
  const m = /\s#/.exec(line);
  return (m ? line.slice(0, m.index) : line).trimEnd();
}

/** Join continuation lines (leading whitespace, Postfix style) onto the key line before them. */
function logicalLines(text: string, problems: Problem[]): LogicalLine[] {
  const out: LogicalLine[] = [];
  let canContinue = false;
  text.split(/\r?\n/).forEach((raw, i) => {
    const line = i + 1;
    const body = stripComment(raw);
    if (body.trim() === '') return;
    if (/^\s/.test(body)) {
      const last = out[out.length - 1];
      if (canContinue && last !== undefined && !/^\s*[a-z_]+\s*=/.test(body)) {
        last.text += ` ${body.trim()}`;
        return;
      }
      problems.push({
        line, key: body.trim().split(/[\s=]/)[0] ?? '',
        message: `expected a key or [section] at the start of the line (indented lines continue the previous value), got ${quote(body)}`,
      });
      return;
    }
    out.push({ line, text: body });
    canContinue = !body.startsWith('[');
  });
  return out;
}

function editDistance(a: string, b: string): number {
  const d = Array.from({ length: a.length + 1 }, (_, i) => [i, ...Array<number>(b.length).fill(0)]);
  for (let j = 1; j <= b.length; j++) d[0]![j] = j;
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      d[i]![j] = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
  }
  return d[a.length]![b.length]!;
}

function suggestion(key: string, candidates: readonly KeySpec[]): string {
  const norm = key.toLowerCase().replace(/-/g, '_');
  const best = candidates.find((k) => k.key === norm) ?? candidates.find((k) => editDistance(k.key, norm) <= 2);
  return best ? ` (did you mean ${best.key}?)` : '';
}

const SECTION_HELP = '[milter], [tdc], [direction], [policy NAME], [group NAME] or [machine NAME]';

/** Parse the text into sections; semantic problems of single lines are collected in `problems`. */
export function parseRaw(text: string): RawConfig {
  const problems: Problem[] = [];
  const sections: RawSection[] = [];
  /** Where keys go; null = inside a section we could not use (its keys are skipped). */
  let current: RawSection | null | undefined;
  const firstAt = new Map<string, number>();

  for (const { line, text: body } of logicalLines(text, problems)) {
    if (body.startsWith('[')) {
      current = openSection(body, line, problems, firstAt);
      if (current) sections.push(current);
      continue;
    }
    const m = /^([A-Za-z0-9_.-]+)\s*=\s*(.*)$/.exec(body);
    if (!m) {
      problems.push({ line, key: body.split(/\s/)[0]!, message: `expected key = value, got ${quote(body)}` });
      continue;
    }
    const key = m[1]!;
    const value = m[2]!.trim();
    if (current === undefined) {
      problems.push({ line, key, message: `expected a [section] header before the first key, got ${key} outside any section` });
      continue;
    }
    if (current === null) continue;
    addEntry(current, key, value, line, problems);
  }
  return { sections, problems };
}

function openSection(body: string, line: number, problems: Problem[], firstAt: Map<string, number>): RawSection | null {
  const m = /^\[\s*([A-Za-z]+)(?:\s+(\S+))?\s*\]$/.exec(body);
  if (!m) {
    problems.push({ line, key: body, message: `expected ${SECTION_HELP}, got ${quote(body)}` });
    return null;
  }
  const kind = m[1]!.toLowerCase();
  let name = m[2] ?? '';
  const label = `[${kind}${name ? ` ${name}` : ''}]`;
  const singleton = kind === 'milter' || kind === 'tdc' || kind === 'direction';
  const named = kind === 'policy' || kind === 'group' || kind === 'machine';
  if (!singleton && !named) {
    problems.push({ line, key: label, message: `expected ${SECTION_HELP}, got an unknown section` });
    return null;
  }
  if (singleton && name !== '') {
    problems.push({ line, key: label, message: `expected [${kind}] without a name, got ${quote(name)}` });
    return null;
  }
  if (named) {
    const valid = kind === 'machine' ? isHostname(name) : parseName(name).ok;
    if (!valid) {
      const what = kind === 'machine' ? 'a host name' : 'a name of letters, digits, _ . -';
      problems.push({ line, key: label, message: `expected [${kind} NAME] with ${what}, got ${name ? quote(name) : 'no name'}` });
      return null;
    }
    if (kind === 'policy' && name.toLowerCase() === 'default') name = 'DEFAULT';
  }
  const id = `${kind} ${kind === 'policy' || kind === 'group' ? name.toLowerCase() : name.toLowerCase().replace(/\.$/, '')}`;
  const first = firstAt.get(id);
  if (first !== undefined) {
    const what = kind === 'policy' ? 'policy' : 'section';
    problems.push({ line, key: label, message: `expected each ${what} once, got a duplicate (first at line ${first})` });
    return null;
  }
  firstAt.set(id, line);
  return { kind: kind as RawSectionKind, name, line, entries: new Map(), bad: new Set() };
}

function addEntry(section: RawSection, key: string, value: string, line: number, problems: Problem[]): void {
  const layered = section.kind === 'group' || section.kind === 'machine';
  const schemaSection: SectionKind = layered ? 'tdc' : (section.kind as SectionKind);
  const label = layered ? `[${section.kind} ${section.name}]` : section.kind === 'policy' ? `[policy ${section.name}]` : `[${section.kind}]`;
  const spec = findKey(schemaSection, key);
  if (!spec) {
    const elsewhere = (['milter', 'direction', 'policy'] as const).find((s) => findKey(s, key));
    const message = layered && elsewhere
      ? `expected only [tdc] keys in ${label}, got a [${elsewhere}] key`
      : `expected a key of ${label}${suggestion(key, keysOf(schemaSection))}, got an unknown key`;
    problems.push({ line, key, message });
    return;
  }
  const dup = section.entries.get(key);
  if (dup && spec.repeatable !== true) {
    problems.push({ line, key, message: `expected one ${key} per section, got a second one (first at line ${dup.line})` });
    return;
  }
  const r = parseValue(spec, value);
  if (!r.ok) {
    section.bad.add(key);
    problems.push({ line, key, message: `expected ${r.expected}, got ${r.got ?? (value === '' ? 'nothing' : quote(value))}` });
    return;
  }
  // A repeatable key: each line adds its items to the list of the first.
  if (dup) (dup.value as unknown[]).push(...(r.value as unknown[]));
  else section.entries.set(key, { spec, text: value, value: r.value, line });
}
