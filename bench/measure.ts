/**
 * Measurement helpers for `npm run bench`: CPU times and peak RSS from /proc, Postfix's CPU split by
 * daemon, quantiles from a Prometheus histogram text, medians. Reading /proc is the only I/O here;
 * the parsing functions are pure. Imports nothing from lib/.
 */
import * as fs from 'node:fs';

export const CLOCK_TICKS = 100; // USER_HZ on Linux

/** utime, stime, cutime, cstime (ticks) and comm of a process, or undefined when it is gone. */
export interface ProcStat { comm: string; utime: number; stime: number; cutime: number; cstime: number }

export function parseProcStat(text: string): ProcStat {
  const open = text.indexOf('(');
  const close = text.lastIndexOf(')');
  const fields = text.slice(close + 2).split(' ');
  // fields[0] is state (field 3); utime is field 14 → index 11.
  return {
    comm: text.slice(open + 1, close),
    utime: Number(fields[11]),
    stime: Number(fields[12]),
    cutime: Number(fields[13]),
    cstime: Number(fields[14]),
  };
}

export function readProcStat(pid: number): ProcStat | undefined {
  try {
    return parseProcStat(fs.readFileSync(`/proc/${pid}/stat`, 'latin1'));
  } catch {
    return undefined;
  }
}

/** CPU seconds a process used itself (not its children). */
export function cpuSeconds(pid: number): number {
  const s = readProcStat(pid);
  return s === undefined ? 0 : (s.utime + s.stime) / CLOCK_TICKS;
}

/** VmHWM (peak RSS) in bytes; 0 when unknown. */
export function peakRss(pid: number): number {
  try {
    const m = /^VmHWM:\s+(\d+) kB/m.exec(fs.readFileSync(`/proc/${pid}/status`, 'latin1'));
    return m === null ? 0 : Number(m[1]) * 1024;
  } catch {
    return 0;
  }
}

/** Busy and total jiffies of the whole machine (from the first line of /proc/stat). */
export function machineTicks(): { busy: number; total: number } {
  const line = fs.readFileSync('/proc/stat', 'latin1').split('\n')[0]!;
  const v = line.trim().split(/\s+/).slice(1).map(Number);
  const idle = (v[3] ?? 0) + (v[4] ?? 0);
  const total = v.slice(0, 8).reduce((a, b) => a + b, 0);
  return { busy: total - idle, total };
}

/**
 * Postfix's CPU by daemon name. Long-lived daemons are read per PID; what exited daemons used is
 * in the master's cutime/cstime (the master reaps them), reported as 'exited'.
 */
export type CpuByName = Record<string, number>;

export function postfixCpu(masterPid: number, pids: number[]): { byPid: Map<number, ProcStat>; master: ProcStat | undefined } {
  const byPid = new Map<number, ProcStat>();
  for (const pid of pids) {
    const s = readProcStat(pid);
    if (s !== undefined) byPid.set(pid, s);
  }
  return { byPid, master: readProcStat(masterPid) };
}

/** CPU seconds per daemon name between two postfixCpu() snapshots. */
export function postfixCpuDelta(
  before: ReturnType<typeof postfixCpu>,
  after: ReturnType<typeof postfixCpu>,
): CpuByName {
  const out: CpuByName = {};
  const add = (name: string, ticks: number): void => {
    out[name] = (out[name] ?? 0) + ticks / CLOCK_TICKS;
  };
  for (const [pid, a] of after.byPid) {
    const b = before.byPid.get(pid);
    const own = a.utime + a.stime - (b === undefined ? 0 : b.utime + b.stime);
    add(a.comm === 'master' ? 'master' : a.comm, Math.max(0, own));
  }
  if (before.master !== undefined && after.master !== undefined) {
    add('exited', after.master.cutime + after.master.cstime - before.master.cutime - before.master.cstime);
  }
  return out;
}

/** Prometheus histogram buckets (le → cumulative count) of one metric from /metrics text. */
export function parseHistogram(text: string, name: string): { buckets: [number, number][]; count: number } {
  const buckets: [number, number][] = [];
  let count = 0;
  const re = new RegExp(`^${name}_bucket\\{le="([^"]+)"\\} (\\S+)$`);
  for (const line of text.split('\n')) {
    const m = re.exec(line);
    if (m !== null) buckets.push([m[1] === '+Inf' ? Infinity : Number(m[1]), Number(m[2])]);
    else if (line.startsWith(`${name}_count `)) count = Number(line.slice(name.length + 7));
  }
  buckets.sort((a, b) => a[0] - b[0]);
  return { buckets, count };
}

/** The difference of two cumulative histograms (after − before). */
export function histogramDelta(
  before: ReturnType<typeof parseHistogram>,
  after: ReturnType<typeof parseHistogram>,
): ReturnType<typeof parseHistogram> {
  const prev = new Map(before.buckets);
  return { buckets: after.buckets.map(([le, c]) => [le, c - (prev.get(le) ?? 0)]), count: after.count - before.count };
}

/** The q-quantile (0..1) by linear interpolation inside the bucket, as Prometheus does; NaN when empty. */
export function histogramQuantile(h: ReturnType<typeof parseHistogram>, q: number): number {
  const total = h.buckets.length > 0 ? h.buckets[h.buckets.length - 1]![1] : 0;
  if (total <= 0) return NaN;
  const rank = q * total;
  let prevLe = 0;
  let prevCount = 0;
  for (const [le, c] of h.buckets) {
    if (c >= rank) {
      if (le === Infinity) return prevLe; // beyond the last finite bucket: its bound is all we know
      return prevLe + ((le - prevLe) * (rank - prevCount)) / Math.max(c - prevCount, 1e-9);
    }
    prevLe = le;
    prevCount = c;
  }
  return prevLe;
}

/** The q-quantile of raw samples (nearest rank); NaN when empty. */
export function quantile(values: number[], q: number): number {
  if (values.length === 0) return NaN;
  const s = [...values].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil(q * s.length) - 1))]!;
}

export function median(values: number[]): number {
  const v = values.filter((x) => Number.isFinite(x));
  if (v.length === 0) return NaN;
  const s = [...v].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}
