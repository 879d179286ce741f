/**
 * The benchmark's child processes: the C null milter (compiled here), the tdc-milter daemon
 * (dist/lib/main.js with a generated config), the STARTTLS intake (dist/bench/intake.js) and
 * Postfix's smtp-source as the load. Each is started, waited for, measured and stopped by PID.
 * Imports nothing from lib/ (the daemon is the real CLI process).
 */
import { execFileSync, fork, spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as net from 'node:net';
import * as path from 'node:path';
import type { IntakeReport } from './intake';
import { parseProcStat, type ProcStat } from './measure';

export const ROOT = path.join(__dirname, '..', '..');
export const CA_FILE = path.join(ROOT, 'spec', 'fixtures', 'tls', 'ca.crt');
const NULL_MILTER_SRC = path.join(ROOT, 'bench', 'null-milter.c');

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Resolves once something accepts TCP connections on 127.0.0.1:port. */
export async function waitForPort(port: number, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = net.connect(port, '127.0.0.1');
      s.once('connect', () => { s.destroy(); resolve(true); });
      s.once('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`${what} not listening on 127.0.0.1:${port} after ${timeoutMs} ms`);
    await sleep(50);
  }
}

export function httpGet(url: string): Promise<string> {
  return new Promise((resolve, reject) => {
    http.get(url, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
      res.on('error', reject);
    }).on('error', reject);
  });
}

/** Stops a child we started: SIGTERM, then SIGKILL after `graceMs`. Resolves with its stdout. */
export function stopChild(child: ChildProcess, graceMs = 10_000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const t = setTimeout(() => child.kill('SIGKILL'), graceMs);
    child.once('exit', () => { clearTimeout(t); resolve(); });
    child.kill('SIGTERM');
  });
}

// ---- the C null milter --------------------------------------------------------------------------

/** Compiles bench/null-milter.c (once per run) and returns the binary's path. */
export function buildNullMilter(outDir: string): string {
  const bin = path.join(outDir, 'null-milter');
  execFileSync('gcc', ['-O2', '-Wall', '-o', bin, NULL_MILTER_SRC, '-lmilter', '-lpthread'], { stdio: 'inherit' });
  return bin;
}

export interface Running { child: ChildProcess; pid: number; output(): string }

function capture(child: ChildProcess): () => string {
  let out = '';
  child.stdout?.on('data', (c: Buffer) => (out += c.toString('utf8')));
  child.stderr?.on('data', (c: Buffer) => (out += c.toString('utf8')));
  return () => out;
}

export async function startNullMilter(bin: string, port: number): Promise<Running> {
  const child = spawn(bin, [`inet:${port}@127.0.0.1`], { stdio: ['ignore', 'pipe', 'pipe'] });
  const output = capture(child);
  await waitForPort(port, 10_000, 'null milter');
  return { child, pid: child.pid!, output };
}

// ---- tdc-milter -----------------------------------------------------------------------------------

export interface DaemonOptions {
  dir: string;
  milterPort: number;
  statusPort: number;
  journaling: boolean;
  intakePort?: number;
  queueMaxBytes?: string;
  extraTdc?: string[];
  extraMilter?: string[];
  /** Extra node flags, e.g. ['--cpu-prof', '--cpu-prof-dir=DIR']. */
  nodeFlags?: string[];
}

/** `key = value` lines; a later line for the same key replaces an earlier one (the parser refuses duplicates). */
function section(name: string, lines: string[]): string[] {
  const byKey = new Map<string, string>();
  for (const l of lines) byKey.set(l.split('=')[0]!.trim(), l);
  return [`[${name}]`, ...byKey.values(), ''];
}

export function daemonConfig(o: DaemonOptions): string {
  return [
    ...section('milter', [
      `listen = inet:127.0.0.1:${o.milterPort}`,
      `status_listen = 127.0.0.1:${o.statusPort}`,
      'hostname = gw.bench.test',
      `log_file = ${path.join(o.dir, 'tdc.log')}`,
      // JSON lines carry ISO times in ms; the copy lag is measured from them (daemonCopyLags).
      'log_format = json',
      'log_level = info',
      'drain_time = 5s',
      ...(o.extraMilter ?? []),
    ]),
    ...section('tdc', [
      `enabled = ${o.journaling ? 'yes' : 'no'}`,
      'intake_address = journal@intake.bench',
      `relay = [127.0.0.1]:${o.intakePort ?? 25}`,
      `tls_ca_file = ${CA_FILE}`,
      ...(o.queueMaxBytes !== undefined ? [`queue_max_bytes = ${o.queueMaxBytes}`] : []),
      ...(o.extraTdc ?? []),
    ]),
    '[policy DEFAULT]',
    'tdc = global',
    '',
  ].join('\n');
}

export async function startDaemon(o: DaemonOptions): Promise<Running & { logFile: string; statusUrl: string }> {
  const conf = path.join(o.dir, 'milter.conf');
  fs.writeFileSync(conf, daemonConfig(o));
  const main = path.join(ROOT, 'dist', 'lib', 'main.js');
  const child = spawn(process.execPath, [...(o.nodeFlags ?? []), main, 'run', '--config', conf], {
    stdio: ['ignore', 'pipe', 'pipe'],
    cwd: o.dir,
  });
  const output = capture(child);
  try {
    await waitForPort(o.milterPort, 15_000, 'tdc-milter');
    await waitForPort(o.statusPort, 5_000, 'tdc-milter status endpoint');
  } catch (err) {
    child.kill('SIGKILL');
    throw new Error(`${(err as Error).message}\n${output()}`);
  }
  return { child, pid: child.pid!, output, logFile: path.join(o.dir, 'tdc.log'), statusUrl: `http://127.0.0.1:${o.statusPort}` };
}

// ---- the intake ------------------------------------------------------------------------------------

export interface IntakeProcess {
  pid: number;
  port: number;
  count(): Promise<IntakeReport>;
  stop(): Promise<void>;
}

export async function startIntake(mode: 'sink' | 'stall'): Promise<IntakeProcess> {
  const child = fork(path.join(__dirname, 'intake.js'), [mode], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const waiters: ((r: IntakeReport) => void)[] = [];
  let ready: IntakeReport | undefined;
  child.on('message', (m: IntakeReport) => {
    if (m.op === 'ready') ready = m;
    else waiters.shift()?.(m);
  });
  const deadline = Date.now() + 10_000;
  while (ready === undefined) {
    if (Date.now() > deadline || child.exitCode !== null) throw new Error('intake did not start');
    await sleep(20);
  }
  return {
    pid: child.pid!,
    port: ready.port,
    count: () => new Promise((resolve) => { waiters.push(resolve); child.send({ op: 'count' }); }),
    stop: () => stopChild(child, 3000),
  };
}

// ---- smtp-source ---------------------------------------------------------------------------------

export interface SourceResult { wallMs: number; cpuSeconds: number; output: string; code: number }

/**
 * Runs smtp-source under a shell that prints its own /proc stat afterwards: the shell's cutime and
 * cstime then hold smtp-source's CPU (the shell reaped it).
 */
export function runSmtpSource(port: number, count: number, bytes: number, sessions = 20): Promise<SourceResult> {
  const args = [
    '-N', '-s', String(sessions), '-m', String(count), '-l', String(bytes), '-S', 'bench',
    '-M', 'client.bench.test', '-f', 'sender@client.bench.test', '-t', 'rcpt@example.net', `127.0.0.1:${port}`,
  ];
  const script = '/usr/sbin/smtp-source "$@"; rc=$?; echo; echo "@@STAT $(cat /proc/$$/stat)"; exit $rc';
  const started = process.hrtime.bigint();
  return new Promise((resolve) => {
    const child = spawn('sh', ['-c', script, 'sh', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let wallMs = 0;
    child.stdout.on('data', (c: Buffer) => {
      const s = c.toString('latin1');
      if (wallMs === 0 && s.includes('@@STAT')) wallMs = Number(process.hrtime.bigint() - started) / 1e6;
      out += s;
    });
    child.stderr.on('data', (c: Buffer) => (out += c.toString('latin1')));
    child.on('close', (code) => {
      if (wallMs === 0) wallMs = Number(process.hrtime.bigint() - started) / 1e6;
      const statLine = /@@STAT (.*)/.exec(out)?.[1];
      let cpu = 0;
      if (statLine !== undefined) {
        const s: ProcStat = parseProcStat(statLine);
        cpu = (s.cutime + s.cstime) / 100;
      }
      resolve({ wallMs, cpuSeconds: cpu, output: out.replace(/\n?@@STAT .*\n?/, '').trim(), code: code ?? -1 });
    });
  });
}
