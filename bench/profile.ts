/**
 * Summarises V8 .cpuprofile files (from `node --cpu-prof`) into the top functions by self time,
 * so the bench can say where the daemon's CPU goes. Pure apart from reading the files.
 * Imports nothing from lib/.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

interface ProfileNode { id: number; callFrame: { functionName: string; url: string; lineNumber: number }; hitCount?: number }
interface CpuProfile { nodes: ProfileNode[]; startTime: number; endTime: number; samples?: number[] }

export interface ProfileEntry { name: string; where: string; selfPct: number }

/** Top `n` functions by self samples over every profile in `dir` (idle and GC shown as such). */
/** Which part of the program a script URL belongs to: our lib area, a package, or node itself. */
export function groupOf(url: string, name: string): string {
  if (url === '') return name.startsWith('(') ? name : '(native)';
  const lib = /\/dist\/lib\/([^/]+)\//.exec(url) ?? /\/dist\/lib\/([^/]+)\.js/.exec(url);
  if (lib !== null) return `lib/${lib[1]}`;
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(url);
  if (pkg !== null) return pkg[1]!;
  if (url.startsWith('node:')) return 'node core';
  return 'other';
}

export function summarizeProfiles(dir: string, n: number): {
  samples: number; top: ProfileEntry[]; groups: { group: string; selfPct: number }[]; files: string[];
} {
  const self = new Map<string, { name: string; where: string; hits: number }>();
  const groups = new Map<string, number>();
  let total = 0;
  const files = fs.existsSync(dir) ? fs.readdirSync(dir).filter((f) => f.endsWith('.cpuprofile')) : [];
  for (const f of files) {
    const p = JSON.parse(fs.readFileSync(path.join(dir, f), 'utf8')) as CpuProfile;
    for (const node of p.nodes) {
      const hits = node.hitCount ?? 0;
      if (hits === 0) continue;
      const cf = node.callFrame;
      const where = cf.url === '' ? '' : `${cf.url.replace(/^file:\/\//, '').replace(/^.*\/(node_modules|dist)\//, '$1/')}:${cf.lineNumber + 1}`;
      const name = cf.functionName || '(anonymous)';
      const g = groupOf(cf.url, name);
      groups.set(g, (groups.get(g) ?? 0) + hits);
      const key = `${name}@${where}`;
      const e = self.get(key) ?? { name, where, hits: 0 };
      e.hits += hits;
      self.set(key, e);
      total += hits;
    }
  }
  const top = [...self.values()]
    .sort((a, b) => b.hits - a.hits)
    .slice(0, n)
    .map((e) => ({ name: e.name, where: e.where, selfPct: total > 0 ? (100 * e.hits) / total : 0 }));
  const pct = (h: number): number => (total > 0 ? (100 * h) / total : 0);
  return {
    samples: total,
    top,
    groups: [...groups.entries()].sort((a, b) => b[1] - a[1]).map(([group, h]) => ({ group, selfPct: pct(h) })),
    files,
  };
}
