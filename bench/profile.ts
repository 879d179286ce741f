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

/**
 * The daemon's jobs, in the order a sample is given to them: a sample whose stack has a log-line
 * frame anywhere is a log line's cost (the logger is called from every part); otherwise it goes to
 * the job of its innermost frame that has one (so a socket write in native code counts for the part
 * that wrote, and the journal build inside the metrics' timer for the journal build).
 */
const JOBS: readonly { job: string; re: RegExp; anywhere?: boolean }[] = [
  { job: 'startup', re: /internal\/modules\/cjs|\/dist\/lib\/main\.js:1$|\/dist\/lib\/config\//, anywhere: true },
  { job: 'log lines', re: /\/status\/mail-log|\/util\/logger|internal\/fs\/streams/, anywhere: true },
  { job: 'tracker', re: /\/status\/tracker/ },
  { job: 'metrics, health, tophosts', re: /\/status\/(metrics|health|tophosts)|prom-client/ },
  { job: 'SMTP client + TLS', re: /\/lib\/smtp\/|\/forwarder\/(intake-pool|smtp-agent|smtp-outcome|route)|_tls_|internal\/tls/ },
  { job: 'queue + events', re: /\/forwarder\// },
  { job: 'journal build + policy', re: /\/lib\/journal|\/lib\/journaler|\/lib\/policy|\/lib\/app\.js/ },
  { job: 'milter side', re: /\/lib\/milter|\/lib\/message|onconnection@node:net/ },
];

interface TreeNode extends ProfileNode { children?: number[] }

/**
 * Shares of the busy samples (idle left out) by the daemon's job, over every profile in `dir`. Note
 * that V8 samples wall time: a sample in a system call (a socket write that wakes the MTA) also counts
 * the time the process waited for the CPU afterwards, so on a loaded machine write-heavy jobs look
 * bigger than their CPU.
 */
export function jobShares(dir: string): { busySamples: number; jobs: { job: string; pct: number }[] } {
  const totals = new Map<string, number>();
  let busy = 0;
  const files = fs.existsSync(dir) ? fs.readdirSync(dir).filter((f) => f.endsWith('.cpuprofile')) : [];
  for (const f of files) {
    const p = JSON.parse(fs.readFileSync(path.join(dir, f), 'utf8')) as { nodes: TreeNode[] };
    const parent = new Map<number, TreeNode>();
    for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n);
    for (const n of p.nodes) {
      const hits = n.hitCount ?? 0;
      if (hits === 0 || n.callFrame.functionName === '(idle)') continue;
      busy += hits;
      const stack: string[] = [];
      for (let x: TreeNode | undefined = n; x !== undefined; x = parent.get(x.id)) {
        stack.push(`${x.callFrame.functionName}@${x.callFrame.url}:${x.callFrame.lineNumber + 1}`);
      }
      const job = jobOf(stack, n.callFrame.functionName);
      totals.set(job, (totals.get(job) ?? 0) + hits);
    }
  }
  const jobs = [...totals.entries()].sort((a, b) => b[1] - a[1]).map(([job, h]) => ({ job, pct: busy > 0 ? (100 * h) / busy : 0 }));
  return { busySamples: busy, jobs };
}

/** The job of one sample, from its stack (innermost frame first, `name@url:line`). */
export function jobOf(stack: readonly string[], leafName: string): string {
  for (const j of JOBS) if (j.anywhere === true && stack.some((s) => j.re.test(s))) return j.job;
  for (const s of stack) for (const j of JOBS) if (j.anywhere !== true && j.re.test(s)) return j.job;
  if (leafName === '(garbage collector)') return 'GC';
  if (leafName === '(program)') return '(program)';
  return 'other (node internals)';
}

