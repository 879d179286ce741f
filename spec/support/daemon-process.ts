/**
 * The real daemon as a process for integration specs: writes a milter.conf into a temp dir, spawns
 * `node dist/lib/main.js run --config FILE`, collects its output lines, waits for lines, signals it and
 * measures how long it took to exit. Also runs the one-shot CLI commands. Needs `npm run build` first.
 * Also feeds incoming messages to it as an MTA would (our milter client). Test support only: imports
 * nothing from lib/ but the frame decoder the milter client uses.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { MilterClient, POSTFIX_OFFER } from './milter-client';

export const MAIN = path.resolve(__dirname, '../../dist/lib/main.js');

/** The environment without TDC_MILTER_CONFIG (it would change which file is read). */
export function cliEnv(): NodeJS.ProcessEnv {
  const e = { ...process.env };
  delete e['TDC_MILTER_CONFIG'];
  return e;
}

export function assertBuilt(): void {
  if (!fs.existsSync(MAIN)) throw new Error(`${MAIN} is missing: run "npm run build" (npm test builds first)`);
}

/** A temp dir holding `milter.conf` with `text`; returns the file's path. */
export function writeConfig(text: string, prefix = 'tdc-daemon-'): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  const file = path.join(dir, 'milter.conf');
  fs.writeFileSync(file, text);
  return file;
}

/**
 * A milter.conf for a daemon on loopback journaling to a loopback STARTTLS intake (test CA), with
 * the status endpoint off; `extra` lines are added to [milter] and [tdc].
 */
export function loopbackJournalConfig(milterPort: number, intakePort: number, caFile: string, extra: { milter?: string[]; tdc?: string[] } = {}): string {
  return [
    '[milter]', `listen = inet:127.0.0.1:${milterPort}`, 'status_listen = no', 'hostname = gw.example.test', ...(extra.milter ?? []), '',
    '[tdc]', 'enabled = yes', 'intake_address = journal@intake.test', `relay = [127.0.0.1]:${intakePort}`, `tls_ca_file = ${caFile}`,
    ...(extra.tdc ?? []), '',
  ].join('\n');
}

export interface ExitInfo {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** ms from `signal()` (or from the start, when never signalled) to the exit. */
  afterSignalMs: number;
}

export interface SpawnOptions {
  /** Added to the environment (e.g. NOTIFY_SOCKET, LISTEN_FDS). */
  env?: NodeJS.ProcessEnv;
  /** A command that runs the daemon, e.g. ['systemd-socket-activate', '-l', ADDR]; it must exec it. */
  wrapper?: string[];
  /** The daemon's program and first arguments; default this tree's build (node dist/lib/main.js), e.g. ['/usr/bin/tdc-milter'] as installed. */
  program?: readonly string[];
}

export class DaemonProcess {
  readonly child: ChildProcess;
  /** Every line the daemon wrote to stdout or stderr so far. */
  readonly lines: string[] = [];
  readonly exited: Promise<ExitInfo>;
  #signalledAt = Date.now();
  #partial = { out: '', err: '' };
  readonly #listeners = new Set<() => void>();

  private constructor(readonly configFile: string, options: SpawnOptions = {}) {
    const command = [...(options.wrapper ?? []), ...(options.program ?? [process.execPath, MAIN]), 'run', '--config', configFile];
    this.child = spawn(command[0]!, command.slice(1), { env: { ...cliEnv(), ...options.env }, stdio: ['ignore', 'pipe', 'pipe'] });
    const collect = (which: 'out' | 'err') => (d: Buffer) => {
      const parts = (this.#partial[which] + d.toString('utf8')).split('\n');
      this.#partial[which] = parts.pop()!;
      this.lines.push(...parts);
      for (const l of [...this.#listeners]) l();
    };
    this.child.stdout!.on('data', collect('out'));
    this.child.stderr!.on('data', collect('err'));
    this.exited = new Promise((resolve) => {
      this.child.on('exit', (code, signal) => resolve({ code, signal, afterSignalMs: Date.now() - this.#signalledAt }));
    });
  }

  /** Spawn without waiting for anything (e.g. when the log goes to a file). */
  static spawn(configFile: string, options: SpawnOptions = {}): DaemonProcess {
    if (options.program === undefined) assertBuilt();
    return new DaemonProcess(configFile, options);
  }

  /** Spawn and wait for the "milter listening" line on stdout/stderr. */
  static async start(configFile: string, timeoutMs = 15_000, options: SpawnOptions = {}): Promise<DaemonProcess> {
    const d = DaemonProcess.spawn(configFile, options);
    try {
      await d.waitForLine(/milter listening on/, timeoutMs);
    } catch (err) {
      d.kill();
      throw err;
    }
    return d;
  }

  /** The lines matching `re`. */
  matching(re: RegExp): string[] {
    return this.lines.filter((l) => re.test(l));
  }

  /** Resolves with the first line matching `re` (already written or still to come). */
  waitForLine(re: RegExp, timeoutMs: number): Promise<string> {
    return new Promise((resolve, reject) => {
      const check = (): boolean => {
        const hit = this.lines.find((l) => re.test(l));
        if (hit === undefined) return false;
        this.#listeners.delete(listener);
        clearTimeout(timer);
        resolve(hit);
        return true;
      };
      const listener = (): void => void check();
      const timer = setTimeout(() => {
        this.#listeners.delete(listener);
        reject(new Error(`no line matching ${re} within ${timeoutMs} ms; output:\n${this.lines.join('\n')}`));
      }, timeoutMs);
      this.#listeners.add(listener);
      check();
    });
  }

  signal(sig: NodeJS.Signals): void {
    this.#signalledAt = Date.now();
    this.child.kill(sig);
  }

  /** Teardown: SIGTERM, up to `graceMs` for the drain to end, then kill(). */
  async stop(graceMs: number): Promise<void> {
    this.signal('SIGTERM');
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([this.exited, new Promise<void>((resolve) => (timer = setTimeout(resolve, graceMs)))]);
    clearTimeout(timer);
    this.kill();
  }

  /** SIGKILL if still running (for finally blocks) and remove the config's temp dir. */
  kill(): void {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGKILL');
    fs.rmSync(path.dirname(this.configFile), { recursive: true, force: true });
  }
}

export interface CliResult {
  status: number | null;
  stdout: string;
  stderr: string;
}

/** Run `node dist/lib/main.js ARGS…` to completion (asynchronously: the daemon's spec process stays responsive). */
export function runCli(args: string[], timeoutMs = 15_000): Promise<CliResult> {
  assertBuilt();
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [MAIN, ...args], { env: cliEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString('utf8')));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString('utf8')));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`tdc-milter ${args.join(' ')} did not finish within ${timeoutMs} ms`));
    }, timeoutMs);
    child.on('close', (status) => {
      clearTimeout(timer);
      resolve({ status, stdout, stderr });
    });
  });
}

/** The synchronous variant, for commands that do not talk to a daemon of this process. */
export function runCliSync(args: string[]): CliResult {
  assertBuilt();
  const r = spawnSync(process.execPath, [MAIN, ...args], { env: cliEnv(), encoding: 'utf8', timeout: 15_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/**
 * Feed one incoming message per queue id (alice@partner.test → ann@example.test, client 192.0.2.7,
 * Subject = the queue id) over one milter connection, as Postfix would. Throws unless every
 * end-of-body is answered with CONTINUE.
 */
export async function feedIncoming(port: number, queueIds: string[]): Promise<void> {
  const c = await MilterClient.connect({ port });
  try {
    await c.negotiate(POSTFIX_OFFER);
    c.macro('C', { j: 'mx.example.test', '{daemon_name}': 'smtpd', '{client_addr}': '192.0.2.7' });
    await c.connectInfo('mx.partner.test', '4', 40000, '192.0.2.7');
    await c.helo('mx.partner.test');
    for (const qid of queueIds) {
      c.macro('M', { i: qid, '{mail_addr}': 'alice@partner.test' });
      await c.mail('<alice@partner.test>');
      await c.rcpt('<ann@example.test>');
      const headers: [string, string][] = [['From', ' alice@partner.test'], ['To', ' ann@example.test'], ['Subject', ` ${qid}`], ['Message-ID', ` <${qid}@partner.test>`]];
      for (const [name, value] of headers) await c.header(name, value);
      await c.eoh();
      await c.body(`message ${qid}\r\n`);
      c.macro('E', { i: qid });
      const replies = (await c.eob()).map((r) => r.char).join('');
      if (replies !== 'c') throw new Error(`${qid}: end-of-body answered ${JSON.stringify(replies)}, expected "c" (continue)`);
    }
    c.quit();
    await c.end();
  } finally {
    c.destroy();
  }
}
