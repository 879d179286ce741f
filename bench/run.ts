/**
 * `npm run bench`: scenarios (a)-(f) round-robin at 10 KiB and 1 MiB, then the memory run; writes
 * bench/results/latest.json and prints a table with the machine and the target verdicts.
 * Flags: --quick, --rounds N, --n10k N, --n1m N, --scenarios abcdef, --sizes 10k,1m, --memory N|0,
 * --profile (CPU profiles of the daemon in scenarios c and d, first round of each size), --out FILE;
 * experiments: --tdc key=value / --milter key=value (extra config lines for the daemon), --node-flag FLAG (for the daemon). Imports nothing from lib/.
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { median } from './measure';
import { runMemory, type MemoryResult } from './memory-run';
import { ROOT, buildNullMilter } from './processes';
import { jobShares, summarizeProfiles } from './profile';
import { SCENARIOS, runScenario, type RunResult, type ScenarioName } from './scenarios';

interface Flags {
  rounds: number; n10k: number; n1m: number; scenarios: ScenarioName[]; sizes: number[];
  memory: number; profile: boolean; out: string; tdcOptions: string[]; milterOptions: string[]; nodeFlags: string[];
}

const KIB10 = 10 * 1024;
const MIB1 = 1024 * 1024;
const sizeTag = (bytes: number): string => (bytes >= MIB1 ? `${bytes / MIB1}MiB` : `${Math.round(bytes / 1024)}KiB`);

export function parseFlags(argv: string[]): Flags {
  const quick = argv.includes('--quick');
  const f: Flags = {
    rounds: quick ? 1 : 3, n10k: quick ? 500 : 2000, n1m: quick ? 50 : 200, scenarios: ['a', 'b', 'c', 'd', 'e', 'f'],
    sizes: [KIB10, MIB1], memory: quick ? 300 : 2000, profile: false, tdcOptions: [], milterOptions: [], nodeFlags: [],
    out: quick ? path.join(os.tmpdir(), 'tdc-bench-quick.json') : path.join(ROOT, 'bench', 'results', 'latest.json'),
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const v = (): string => {
      const x = argv[++i];
      if (x === undefined) throw new Error(`${a} needs a value`);
      return x;
    };
    const int = (): number => {
      const x = Number(v());
      if (!Number.isInteger(x) || x < 0) throw new Error(`${a}: expected a whole number`);
      return x;
    };
    if (a === '--quick') continue;
    else if (a === '--rounds') f.rounds = Math.max(1, int());
    else if (a === '--n10k') f.n10k = int();
    else if (a === '--n1m') f.n1m = int();
    else if (a === '--memory') f.memory = int();
    else if (a === '--profile') f.profile = true;
    else if (a === '--tdc') f.tdcOptions.push(v().replace('=', ' = '));
    else if (a === '--milter') f.milterOptions.push(v().replace('=', ' = '));
    else if (a === '--node-flag') f.nodeFlags.push(v());
    else if (a === '--out') f.out = path.resolve(v());
    else if (a === '--scenarios') {
      const s = v().split('').filter((c): c is ScenarioName => c in SCENARIOS);
      if (s.length === 0) throw new Error('--scenarios: letters from abcdef');
      f.scenarios = s;
    } else if (a === '--sizes') {
      f.sizes = v().split(',').map((s) => (s.toLowerCase() === '1m' ? MIB1 : s.toLowerCase() === '10k' ? KIB10 : Number(s)));
    } else throw new Error(`unknown flag ${a}`);
  }
  return f;
}

function tryRun(cmd: string, args: string[]): string {
  try {
    return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    return '?';
  }
}

/** Installs what the bench needs (scripts/bench-deps.txt) when it is missing; fails clearly when it cannot. */
function ensurePackages(): void {
  execFileSync('bash', [path.join(ROOT, 'scripts', 'install-deps.sh'), path.join(ROOT, 'scripts', 'bench-deps.txt')], { stdio: 'inherit' });
}

function machine(): Record<string, string> {
  return {
    nproc: String(os.cpus().length),
    memory: `${Math.round(os.totalmem() / 2 ** 30)} GiB`,
    kernel: os.release(),
    node: process.version,
    postfix: tryRun('postconf', ['-dh', 'mail_version']),
    libmilter: tryRun('dpkg-query', ['-W', '-f=${Version}', 'libmilter-dev']),
    cpu: os.cpus()[0]?.model ?? '?',
    loadavg: os.loadavg().map((x) => x.toFixed(2)).join(' '),
  };
}

interface SizeSummary {
  bytes: number;
  messages: number;
  perScenario: Record<string, {
    ingest: number; done: number; cpuPer1000: Record<string, number>; machineCpuPer1000: number;
    eobP50Ms?: number; eobP99Ms?: number; journalP99Ms?: number; peakRssMiB?: number; copyLagP50Ms?: number; copyLagP99Ms?: number; ok: boolean;
  }>;
  ratios: Record<string, number>;
  /** CPU ms per journal copy: our daemon in (d) against what the assembled setup spends (issue 11's target). */
  copyCost?: CopyCost;
}

interface CopyCost {
  /** The whole daemon per journaled message in (d). */
  daemonD: number;
  /** The C null milter per message in (f) (in (b) when (f) did not run). */
  nullMilter?: number;
  /** Postfix's smtp client (and tlsproxy) per bcc copy in (e), and in (f). */
  postfixSmtpE?: number;
  postfixSmtpF?: number;
  /** nullMilter + postfixSmtpE: what the daemon's CPU per copy is held against. */
  assembled?: number;
}

/** The per-copy CPU comparison of one size, when (d) ran. */
function copyCost(per: SizeSummary['perScenario']): CopyCost | undefined {
  const d = per['d'];
  if (d === undefined) return undefined;
  const nullMilter = per['f']?.cpuPer1000['milter'] ?? per['b']?.cpuPer1000['milter'];
  const postfixSmtpE = per['e']?.cpuPer1000['smtp'];
  return {
    daemonD: d.cpuPer1000['milter']!,
    nullMilter,
    postfixSmtpE,
    postfixSmtpF: per['f']?.cpuPer1000['smtp'],
    assembled: nullMilter !== undefined && postfixSmtpE !== undefined ? nullMilter + postfixSmtpE : undefined,
  };
}

/** Median of per-round ratios x/y (paired in the same round). */
function pairedRatio(runs: RunResult[], x: ScenarioName, y: ScenarioName, rounds: number): number {
  const r: number[] = [];
  for (let i = 0; i < rounds; i++) {
    const a = runs.find((q) => q.scenario === x && (q as RunResult & { round: number }).round === i);
    const b = runs.find((q) => q.scenario === y && (q as RunResult & { round: number }).round === i);
    if (a && b) r.push(a.ingestMsgPerSec / b.ingestMsgPerSec);
  }
  return median(r);
}

function summarize(runs: (RunResult & { round: number })[], bytes: number, rounds: number, scen: ScenarioName[]): SizeSummary {
  const mine = runs.filter((r) => r.bytes === bytes);
  const per: SizeSummary['perScenario'] = {};
  for (const s of scen) {
    const rs = mine.filter((r) => r.scenario === s);
    if (rs.length === 0) continue;
    const cpuKeys = Object.keys(rs[0]!.cpuPer1000);
    const m = (f: (r: RunResult) => number | undefined): number | undefined => {
      const v = rs.map(f).filter((x): x is number => x !== undefined && Number.isFinite(x));
      return v.length === 0 ? undefined : median(v);
    };
    per[s] = {
      ingest: m((r) => r.ingestMsgPerSec)!,
      done: m((r) => r.doneMsgPerSec)!,
      cpuPer1000: Object.fromEntries(cpuKeys.map((k) => [k, m((r) => r.cpuPer1000[k])!])),
      machineCpuPer1000: m((r) => r.machineCpuPer1000)!,
      eobP50Ms: m((r) => r.eobP50Ms),
      eobP99Ms: m((r) => r.eobP99Ms),
      journalP99Ms: m((r) => r.journalP99Ms),
      peakRssMiB: m((r) => r.peakRssMiB),
      copyLagP50Ms: m((r) => r.copyLagP50Ms),
      copyLagP99Ms: m((r) => r.copyLagP99Ms),
      ok: rs.every((r) => r.ok),
    };
  }
  const ratios: Record<string, number> = {};
  for (const [x, y] of [['c', 'b'], ['d', 'e'], ['d', 'f'], ['d', 'a'], ['b', 'a'], ['c', 'a'], ['e', 'a'], ['f', 'a']] as [ScenarioName, ScenarioName][]) {
    if (per[x] && per[y]) ratios[`${x}/${y}`] = pairedRatio(mine, x, y, rounds);
  }
  return { bytes, messages: mine[0]?.messages ?? 0, perScenario: per, ratios, copyCost: copyCost(per) };
}

interface Verdict { target: string; value: number; limit: number; pass: boolean; note: string }

function verdicts(sizes: SizeSummary[], mem: MemoryResult | undefined): Verdict[] {
  const out: Verdict[] = [];
  const pct = (v: number, l: number): string => `${(((v - l) / l) * 100).toFixed(1)}%`;
  for (const s of sizes) {
    const tag = s.bytes >= MIB1 ? '1 MiB' : `${Math.round(s.bytes / 1024)} KiB`;
    const ge = (name: string, v: number | undefined, limit: number): void => {
      if (v === undefined || !Number.isFinite(v)) return;
      out.push({ target: `${tag} ${name} >= ${limit}`, value: v, limit, pass: v >= limit, note: v >= limit ? '' : `short by ${(limit - v).toFixed(3)} (${pct(v, limit)})` });
    };
    const le = (name: string, v: number | undefined, limit: number, unit: string): void => {
      if (v === undefined || !Number.isFinite(v)) return;
      out.push({ target: `${tag} ${name} <= ${limit} ${unit}`, value: v, limit, pass: v <= limit, note: v <= limit ? '' : `over by ${(v - limit).toFixed(2)} ${unit} (+${pct(v, limit).replace('-', '')})` });
    };
    ge('(c)/(b)', s.ratios['c/b'], 0.95);
    ge('(d)/(e)', s.ratios['d/e'], 1.0);
    ge('(d)/(f)', s.ratios['d/f'], s.bytes >= MIB1 ? 1.2 : 1.25);
    const assembled = s.copyCost?.assembled;
    if (assembled !== undefined) {
      le('daemon CPU per copy (d) vs null milter (f) + Postfix smtp per copy (e)', s.copyCost?.daemonD, Number(assembled.toFixed(3)), 'ms');
    }
    const eobs = ['c', 'd'].map((x) => s.perScenario[x]?.eobP99Ms).filter((x): x is number => x !== undefined);
    if (eobs.length > 0) le('EOB reply p99 (worst of c, d)', Math.max(...eobs), 2, 'ms');
    le('copy lag p99 (d)', s.perScenario['d']?.copyLagP99Ms, 1000, 'ms');
  }
  if (mem !== undefined) {
    const limit = 120 + mem.queueMaxBytes / 2 ** 20;
    out.push({
      target: `memory run peak RSS <= 120 MiB + queue_max_bytes (${limit} MiB)`, value: mem.peakRssMiB, limit,
      pass: mem.peakRssMiB <= limit, note: mem.peakRssMiB <= limit ? '' : `over by ${(mem.peakRssMiB - limit).toFixed(1)} MiB`,
    });
    out.push({
      target: 'memory run drops the overflow (dropped > 0)', value: mem.dropped, limit: 1, pass: mem.dropped > 0, note: '',
    });
  }
  return out;
}

const f1 = (v: number | undefined, d = 1): string => (v === undefined || !Number.isFinite(v) ? '-' : v.toFixed(d));

function printTable(mach: Record<string, string>, sizes: SizeSummary[], mem: MemoryResult | undefined, vs: Verdict[], flags: Flags): void {
  const w = (s: string): void => void process.stdout.write(`${s}\n`);
  w('');
  w(`machine: ${mach['nproc']} CPUs (${mach['cpu']}), ${mach['memory']}, Linux ${mach['kernel']}, node ${mach['node']}, Postfix ${mach['postfix']}, libmilter ${mach['libmilter']}`);
  w(`machine load (1/5/15 min) at the end: ${mach['loadavg']}; at the start: ${mach['loadavgStart']}; max 1-min seen: ${mach['loadavgMax']}` +
    (Number(mach['loadavgMax']) > 3 ? '  (other work shared the CPUs: absolute rates are low, compare the paired ratios)' : ''));
  w(`load: smtp-source -s 20, 1 recipient/message; ${flags.rounds} round(s) round-robin, medians; CPU = ms per message (CPU s per 1,000)`);
  for (const s of sizes) {
    w('');
    w(`${s.bytes >= MIB1 ? '1 MiB' : `${Math.round(s.bytes / 1024)} KiB`} x ${s.messages} messages`);
    w('| scen | ingest msg/s | done msg/s | smtpd | cleanup | smtp | pf other | milter | intake | source | box | EOB reply p50/p99 ms | journal p99 ms | RSS MiB | copy lag p50/p99 ms | ok |');
    w('|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|');
    for (const [name, p] of Object.entries(s.perScenario)) {
      const c = p.cpuPer1000;
      w(`| ${name} | ${f1(p.ingest)} | ${f1(p.done)} | ${f1(c['smtpd'], 2)} | ${f1(c['cleanup'], 2)} | ${f1(c['smtp'], 2)} | ${f1(c['postfix_other'], 2)} | ${f1(c['milter'], 2)} | ${f1(c['intake'], 2)} | ${f1(c['smtp_source'], 2)} | ${f1(p.machineCpuPer1000, 2)} | ${f1(p.eobP50Ms, 3)}/${f1(p.eobP99Ms, 3)} | ${f1(p.journalP99Ms, 2)} | ${f1(p.peakRssMiB)} | ${f1(p.copyLagP50Ms, 0)}/${f1(p.copyLagP99Ms, 0)} | ${p.ok ? 'yes' : 'NO'} |`);
    }
    w(`ratios (median of per-round ratios): ${Object.entries(s.ratios).map(([k, v]) => `${k} ${f1(v, 3)}`).join(', ')}`);
    const cc = s.copyCost;
    if (cc !== undefined) {
      w(`CPU per copy, ms: daemon (d) ${f1(cc.daemonD, 2)} | null milter (f) ${f1(cc.nullMilter, 2)} + Postfix smtp client per copy (e) ` +
        `${f1(cc.postfixSmtpE, 2)} = ${f1(cc.assembled, 2)} (smtp client in (f): ${f1(cc.postfixSmtpF, 2)})`);
    }
  }
  if (mem !== undefined) {
    w('');
    w(`memory run: ${mem.messages} x 1 MiB, intake stalled, queue_max_bytes ${mem.queueMaxBytes / 2 ** 20} MiB: peak RSS ${f1(mem.peakRssMiB)} MiB ` +
      `(after first half ${f1(mem.rssAfterFirstHalfMiB)}, after second ${f1(mem.rssAfterSecondHalfMiB)}), queued ${f1(mem.queuedBytes / 2 ** 20)} MiB in ${mem.queuedCopies} copies, dropped ${mem.dropped}, ingest ${f1(mem.ingestMsgPerSec)} msg/s`);
  }
  w('');
  w('targets:');
  for (const v of vs) w(`  ${v.pass ? 'PASS' : 'MISS'}  ${v.target}: ${f1(v.value, 3)}${v.note ? `  (${v.note})` : ''}`);
}

async function main(): Promise<void> {
  const flags = parseFlags(process.argv.slice(2));
  ensurePackages();
  if (process.getuid?.() !== 0) throw new Error('the bench runs Postfix instances and must run as root');
  const workDir = fs.mkdtempSync(path.join(os.tmpdir(), 'tdc-bench-'));
  fs.chmodSync(workDir, 0o755);
  const profDir = flags.profile ? path.join(workDir, 'prof') : undefined;
  const nullMilterBin = buildNullMilter(workDir);
  const runs: (RunResult & { round: number })[] = [];
  const started = Date.now();
  const loadStart = os.loadavg().map((x) => x.toFixed(2)).join(' ');
  let loadMax = os.loadavg()[0]!;
  const loadTimer = setInterval(() => (loadMax = Math.max(loadMax, os.loadavg()[0]!)), 5000);
  loadTimer.unref();
  try {
    for (const bytes of flags.sizes) {
      const n = bytes >= MIB1 ? flags.n1m : flags.n10k;
      if (n === 0) continue;
      for (let round = 0; round < flags.rounds; round++) {
        // Rotate the start so no scenario always runs first in a round.
        const order = flags.scenarios.map((_, i) => flags.scenarios[(i + round) % flags.scenarios.length]!);
        for (const s of order) {
          const prof = profDir !== undefined && (s === 'c' || s === 'd') && round === 0 ? path.join(profDir, `${s}-${sizeTag(bytes)}`) : undefined;
          const r = await runScenario(s, bytes, n, { workDir, nullMilterBin, cpuProfDir: prof, tdcOptions: flags.tdcOptions, milterOptions: flags.milterOptions, daemonNodeFlags: flags.nodeFlags });
          runs.push({ ...r, round });
          process.stdout.write(
            `[${((Date.now() - started) / 1000).toFixed(0)}s] ${bytes >= MIB1 ? '1MiB' : '10KiB'} round ${round + 1} (${s}) ` +
              `${r.ingestMsgPerSec.toFixed(1)} msg/s, copies ${r.copies}${r.eobP99Ms !== undefined ? `, EOB p99 ${r.eobP99Ms.toFixed(3)} ms` : ''}` +
              `${r.copyLagP99Ms !== undefined ? `, lag p99 ${r.copyLagP99Ms.toFixed(0)} ms` : ''}${r.ok ? '' : `  PROBLEMS: ${r.problems.join('; ')}`}\n`,
          );
        }
      }
    }
    const mem = flags.memory > 0 ? await runMemory(flags.memory, workDir) : undefined;
    const sizes = flags.sizes.map((b) => summarize(runs, b, flags.rounds, flags.scenarios)).filter((s) => s.messages > 0);
    clearInterval(loadTimer);
    const mach = { ...machine(), loadavgStart: loadStart, loadavgMax: loadMax.toFixed(2) };
    const vs = verdicts(sizes, mem);
    const profile: Record<string, ReturnType<typeof summarizeProfiles> & { byJob: ReturnType<typeof jobShares> }> = {};
    for (const sub of profDir !== undefined && fs.existsSync(profDir) ? fs.readdirSync(profDir) : []) {
      profile[sub] = { ...summarizeProfiles(path.join(profDir!, sub), 25), byJob: jobShares(path.join(profDir!, sub)) };
      for (const f of profile[sub]!.files) fs.copyFileSync(path.join(profDir!, sub, f), path.join(os.tmpdir(), `tdc-bench-daemon-${sub}.cpuprofile`));
    }
    const result = {
      when: new Date().toISOString(), machine: mach, flags, scenarios: SCENARIOS, sizes, memory: mem, verdicts: vs, runs,
      profile, durationSeconds: Math.round((Date.now() - started) / 1000),
    };
    fs.mkdirSync(path.dirname(flags.out), { recursive: true });
    fs.writeFileSync(flags.out, JSON.stringify(result, null, 2) + '\n');
    printTable(mach, sizes, mem, vs, flags);
    for (const [sub, prof] of Object.entries(profile)) {
      process.stdout.write(`\ndaemon CPU profile, scenario ${sub}, first round (${path.join(os.tmpdir(), `tdc-bench-daemon-${sub}.cpuprofile`)}), self time:\n`);
      process.stdout.write(`  by part: ${prof.groups.slice(0, 12).map((g) => `${g.group} ${g.selfPct.toFixed(1)}%`).join(', ')}\n`);
      process.stdout.write(`  by job (share of ${prof.byJob.busySamples} busy samples, by stack): ${prof.byJob.jobs.map((j) => `${j.job} ${j.pct.toFixed(1)}%`).join(', ')}\n`);
      for (const p of prof.top.slice(0, 15)) process.stdout.write(`  ${p.selfPct.toFixed(1).padStart(5)}%  ${p.name}  ${p.where}\n`);
    }
    process.stdout.write(`\nresult: ${flags.out} (${result.durationSeconds} s)\n`);
  } finally {
    fs.rmSync(workDir, { recursive: true, force: true });
  }
}

if (require.main === module) {
  main().catch((err: unknown) => {
    process.stderr.write(`bench failed: ${err instanceof Error ? err.stack ?? err.message : String(err)}\n`);
    process.exit(1);
  });
}
