/**
 * One benchmark run of one scenario (a-f): fresh Postfix (tmpfs, discard), the scenario's milter and intake,
 * a warm-up batch, then N messages from smtp-source; measures ingest rate, CPU per process, the
 * daemon's end-of-body latency and peak RSS, copies delivered and their lag. Imports nothing from lib/.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { freePorts } from '../spec/support/mta-sandbox';
import {
  cpuSeconds, histogramDelta, histogramQuantile, machineTicks, parseHistogram, peakRss, postfixCpu,
  postfixCpuDelta, quantile, readProcStat,
} from './measure';
import { startBenchPostfix, type BenchPostfix } from './postfix-bench';
import {
  CA_FILE, httpGet, runSmtpSource, sleep, startDaemon, startIntake, startNullMilter, stopChild,
  type IntakeProcess, type Running,
} from './processes';

export type ScenarioName = 'a' | 'b' | 'c' | 'd' | 'e' | 'f';
export const SCENARIOS: Record<ScenarioName, string> = {
  a: 'no milter',
  b: 'C libmilter null milter, NR flags',
  c: 'tdc-milter, TDC disabled',
  d: 'tdc-milter journaling to STARTTLS intake',
  e: 'Postfix recipient_bcc_maps copy to STARTTLS intake (TLS reuse)',
  f: 'C libmilter null milter, NR flags, plus Postfix recipient_bcc_maps copy to STARTTLS intake (TLS reuse)',
};

export interface RunContext {
  workDir: string;
  nullMilterBin: string;
  cpuProfDir?: string;
  /** Extra [tdc] lines for the daemon, e.g. 'messages_per_connection = 100' (experiments). */
  tdcOptions?: string[];
  /** Extra [milter] lines for the daemon, e.g. 'log_level = warning' (experiments). */
  milterOptions?: string[];
  /** Extra node flags for the daemon, e.g. '--max-semi-space-size=32' (experiments). */
  daemonNodeFlags?: string[];
}

export interface RunResult {
  scenario: ScenarioName;
  bytes: number;
  messages: number;
  ok: boolean;
  problems: string[];
  ingestMsgPerSec: number;
  doneMsgPerSec: number;
  copies: number;
  /** CPU seconds per 1,000 messages, by process group. */
  cpuPer1000: Record<string, number>;
  /** Whole machine busy CPU seconds per 1,000 messages (includes the bench itself and kernel threads). */
  machineCpuPer1000: number;
  eobP50Ms?: number;
  eobP99Ms?: number;
  eobCount?: number;
  /** Our work per message after the reply (decide, build, enqueue), p99. */
  journalP99Ms?: number;
  peakRssMiB?: number;
  copyLagP50Ms?: number;
  copyLagP99Ms?: number;
  copyLagMaxMs?: number;
}

/**
 * (d) gets room for every copy of a run, as Postfix's disk queue has in (e): the comparison is of
 * sending every copy, not of dropping some while ingest outruns the intake. Experiments' own
 * `--tdc queue_max_…` lines win.
 */
function roomForEveryCopy(scenario: ScenarioName, tdcOptions: string[]): string[] {
  if (scenario !== 'd') return [];
  const has = (key: string): boolean => tdcOptions.some((l) => l.startsWith(key));
  return [...(has('queue_max_bytes') ? [] : ['queue_max_bytes = 2GiB']), ...(has('queue_max_messages') ? [] : ['queue_max_messages = 100000'])];
}

const usesDaemon = (s: ScenarioName): boolean => s === 'c' || s === 'd';
const usesIntake = (s: ScenarioName): boolean => s === 'd' || s === 'e' || s === 'f';
/** Postfix makes the copy itself (recipient_bcc_maps): (e) alone, (f) behind the C null milter. */
const postfixCopies = (s: ScenarioName): boolean => s === 'e' || s === 'f';

/** A log line's time (ms) and text: a JSON line ({"time": ISO, "message"}) or one that starts with an ISO time. */
function timedLine(line: string): { t: number; text: string } | undefined {
  if (line.startsWith('{')) {
    try {
      const j = JSON.parse(line) as { time?: unknown; message?: unknown };
      const t = Date.parse(String(j.time));
      return Number.isNaN(t) ? undefined : { t, text: String(j.message) };
    } catch {
      return undefined;
    }
  }
  const t = Date.parse(line.slice(0, line.indexOf(' ')));
  return Number.isNaN(t) ? undefined : { t, text: line };
}

/**
 * Copy lag from the daemon's log: 'MID <n> with Message-ID … enqueued' → 'MID <n> successfully
 * delivered'. Needs ms times: the bench's daemon logs JSON lines (a log file's gateway timestamps
 * have whole seconds only).
 */
export function daemonCopyLags(log: string): number[] {
  const queued = new Map<string, number>();
  const lags: number[] = [];
  for (const raw of log.split('\n')) {
    const timed = timedLine(raw);
    if (timed === undefined) continue;
    const { t, text: line } = timed;
    let m = /TDC: MID (\d+) with Message-ID .* enqueued for forwarding /.exec(line);
    if (m !== null) {
      queued.set(m[1]!, t);
      continue;
    }
    m = /TDC: MID (\d+) successfully delivered for scanning /.exec(line);
    if (m !== null) {
      const q = queued.get(m[1]!);
      if (q !== undefined) lags.push(t - q);
    }
  }
  return lags;
}

/** Copy lag from Postfix's log: `delay=` of the smtp deliveries to the intake (seconds, 2 decimals). */
export function postfixCopyLags(maillog: string, intakePort: number): number[] {
  const lags: number[] = [];
  const relay = `relay=127.0.0.1[127.0.0.1]:${intakePort},`;
  for (const line of maillog.split('\n')) {
    if (!line.includes(relay) || !line.includes('status=sent')) continue;
    const m = /delay=([\d.]+)/.exec(line);
    if (m !== null) lags.push(Number(m[1]) * 1000);
  }
  return lags;
}

async function metricsText(url: string): Promise<string> {
  return httpGet(`${url}/metrics`);
}

/** Value of a metric of the whole queue (no labels, or destination="the.tdc.queue"). */
export function metricValue(text: string, name: string): number {
  // The sum of the whole queue's samples: tdc_dropped_total has one per reason.
  let sum = NaN;
  for (const line of text.split('\n')) {
    const m = new RegExp(`^${name}(\\{[^}]*\\})? (\\S+)$`).exec(line);
    if (m !== null && (m[1] === undefined || m[1].includes('the.tdc.queue'))) sum = (Number.isNaN(sum) ? 0 : sum) + Number(m[2]);
  }
  return sum;
}

async function waitDone(pf: BenchPostfix, intake: IntakeProcess | undefined, copiesWanted: number, timeoutMs: number): Promise<{ copies: number; timedOut: boolean }> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const copies = intake === undefined ? 0 : (await intake.count()).received;
    if (pf.queued() === 0 && copies >= copiesWanted) return { copies, timedOut: false };
    if (Date.now() > deadline) return { copies, timedOut: true };
    await sleep(20);
  }
}

export async function runScenario(
  scenario: ScenarioName, bytes: number, messages: number, ctx: RunContext,
): Promise<RunResult> {
  const dir = fs.mkdtempSync(path.join(ctx.workDir, `run-${scenario}-`));
  const [milterPort, statusPort] = await freePorts(2);
  let intake: IntakeProcess | undefined;
  let milter: (Running & { statusUrl?: string; logFile?: string }) | undefined;
  let pf: BenchPostfix | undefined;
  const problems: string[] = [];
  try {
    if (usesIntake(scenario)) intake = await startIntake('sink');
    if (scenario === 'b' || scenario === 'f') milter = await startNullMilter(ctx.nullMilterBin, milterPort!);
    if (usesDaemon(scenario)) {
      milter = await startDaemon({
        dir, milterPort: milterPort!, statusPort: statusPort!, journaling: scenario === 'd', intakePort: intake?.port,
        extraTdc: [...roomForEveryCopy(scenario, ctx.tdcOptions ?? []), ...(ctx.tdcOptions ?? [])],
        extraMilter: ctx.milterOptions,
        nodeFlags: [...(ctx.daemonNodeFlags ?? []), ...(ctx.cpuProfDir !== undefined ? ['--cpu-prof', `--cpu-prof-dir=${ctx.cpuProfDir}`] : [])],
      });
    }
    pf = await startBenchPostfix({
      milter: milter !== undefined ? `inet:127.0.0.1:${milterPort}` : undefined,
      bccIntakePort: postfixCopies(scenario) ? intake!.port : undefined,
      caFile: CA_FILE,
    });

    // Warm-up: JIT, process pools, TLS sessions.
    const warm = Math.max(20, Math.min(500, Math.round(messages / 10)));
    const w = await runSmtpSource(pf.port, warm, bytes);
    if (w.code !== 0) problems.push(`warm-up smtp-source exit ${w.code}: ${w.output.slice(0, 300)}`);
    const warmDone = await waitDone(pf, intake, usesIntake(scenario) ? warm : 0, 60_000);
    if (warmDone.timedOut) problems.push(`warm-up not done: queue ${pf.queued()}, copies ${warmDone.copies}/${warm}`);

    // Before.
    const logOffset = milter !== undefined && 'logFile' in milter && milter.logFile ? fs.statSync(milter.logFile).size : 0;
    const maillogOffset = pf.maillog().length;
    const statusUrl = milter !== undefined && 'statusUrl' in milter ? milter.statusUrl : undefined;
    const textBefore = statusUrl !== undefined ? await metricsText(statusUrl) : undefined;
    const histBefore = textBefore !== undefined ? parseHistogram(textBefore, 'tdc_eob_duration_seconds') : undefined;
    const journalBefore = textBefore !== undefined ? parseHistogram(textBefore, 'tdc_journal_duration_seconds') : undefined;
    const pfBefore = postfixCpu(pf.masterPid, pf.pids());
    const milterBefore = milter !== undefined ? cpuSeconds(milter.pid) : 0;
    const milterSysBefore = milter !== undefined ? readProcStat(milter.pid)?.stime ?? 0 : 0;
    const intakeBefore = intake !== undefined ? cpuSeconds(intake.pid) : 0;
    const ticksBefore = machineTicks();
    const t0 = Date.now();

    const src = await runSmtpSource(pf.port, messages, bytes);
    if (src.code !== 0 || /error|warning/i.test(src.output)) problems.push(`smtp-source: exit ${src.code} ${src.output.slice(0, 300)}`);
    const wantCopies = usesIntake(scenario) ? warm + messages : 0;
    const done = await waitDone(pf, intake, wantCopies, 120_000 + messages * (bytes > 100_000 ? 100 : 10));
    const doneMs = Date.now() - t0;
    if (done.timedOut) problems.push(`not done after ${doneMs} ms: queue ${pf.queued()}, copies ${done.copies}/${wantCopies}`);

    // After.
    const ticksAfter = machineTicks();
    const pfAfter = postfixCpu(pf.masterPid, pf.pids());
    const pfCpu = postfixCpuDelta(pfBefore, pfAfter);
    const k = 1000 / messages;
    const cpu: Record<string, number> = {
      smtpd: (pfCpu['smtpd'] ?? 0) * k,
      cleanup: (pfCpu['cleanup'] ?? 0) * k,
      smtp: ((pfCpu['smtp'] ?? 0) + (pfCpu['tlsproxy'] ?? 0)) * k,
      postfix_other: Object.entries(pfCpu)
        .filter(([n]) => !['smtpd', 'cleanup', 'smtp', 'tlsproxy'].includes(n))
        .reduce((a, [, v]) => a + v, 0) * k,
      milter: milter !== undefined ? (cpuSeconds(milter.pid) - milterBefore) * k : 0,
      milter_system_part: milter !== undefined ? (((readProcStat(milter.pid)?.stime ?? 0) - milterSysBefore) / 100) * k : 0,
      intake: intake !== undefined ? (cpuSeconds(intake.pid) - intakeBefore) * k : 0,
      smtp_source: src.cpuSeconds * k,
    };
    const result: RunResult = {
      scenario, bytes, messages, ok: false, problems,
      ingestMsgPerSec: messages / (src.wallMs / 1000),
      doneMsgPerSec: messages / (doneMs / 1000),
      copies: done.copies,
      cpuPer1000: cpu,
      machineCpuPer1000: ((ticksAfter.busy - ticksBefore.busy) / 100) * k,
    };
    const sentLines = (pf.maillog().slice(maillogOffset).match(/status=sent/g) ?? []).length;
    const wantSent = messages * (postfixCopies(scenario) ? 2 : 1);
    if (sentLines < wantSent) problems.push(`maillog: ${sentLines} status=sent, expected ${wantSent}`);

    if (statusUrl !== undefined && histBefore !== undefined && journalBefore !== undefined) {
      const textAfter = await metricsText(statusUrl);
      const h = histogramDelta(histBefore, parseHistogram(textAfter, 'tdc_eob_duration_seconds'));
      const j = histogramDelta(journalBefore, parseHistogram(textAfter, 'tdc_journal_duration_seconds'));
      result.journalP99Ms = histogramQuantile(j, 0.99) * 1000;
      result.eobCount = h.count;
      result.eobP50Ms = histogramQuantile(h, 0.5) * 1000;
      result.eobP99Ms = histogramQuantile(h, 0.99) * 1000;
      if (h.count !== messages) problems.push(`EOB histogram counted ${h.count}, expected ${messages}`);
    }
    if (milter !== undefined && usesDaemon(scenario)) result.peakRssMiB = peakRss(milter.pid) / 2 ** 20;
    let lags: number[] = [];
    if (scenario === 'd' && milter?.logFile !== undefined) {
      const fd = fs.openSync(milter.logFile, 'r');
      const size = fs.fstatSync(fd).size;
      const buf = Buffer.alloc(size - logOffset);
      fs.readSync(fd, buf, 0, buf.length, logOffset);
      fs.closeSync(fd);
      lags = daemonCopyLags(buf.toString('utf8'));
    } else if (postfixCopies(scenario) && intake !== undefined) {
      lags = postfixCopyLags(pf.maillog().slice(maillogOffset), intake.port);
    }
    if (usesIntake(scenario)) {
      if (lags.length < messages) problems.push(`copy lag known for ${lags.length} of ${messages} copies`);
      result.copyLagP50Ms = quantile(lags, 0.5);
      result.copyLagP99Ms = quantile(lags, 0.99);
      result.copyLagMaxMs = quantile(lags, 1);
    }
    result.ok = problems.length === 0;
    if (!result.ok && milter?.logFile !== undefined && fs.existsSync(milter.logFile)) {
      // Keep the daemon's log of a run with problems (the run's directory goes away).
      const kept = path.join(os.tmpdir(), `tdc-bench-problem-${scenario}-${bytes}-${Date.now()}.log`);
      fs.copyFileSync(milter.logFile, kept);
      problems.push(`daemon log kept at ${kept}`);
    }
    return result;
  } finally {
    await pf?.stop().catch(() => undefined);
    if (milter !== undefined) await stopChild(milter.child, 10_000);
    await intake?.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** Is the pid still alive (for the memory run's sampling)? */
export function alive(pid: number): boolean {
  return readProcStat(pid) !== undefined;
}
