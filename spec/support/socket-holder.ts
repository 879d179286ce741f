/**
 * Drives spec/support/socket-holder.pl, which holds the milter socket as systemd does and (re)starts
 * the real daemon with it (or, plain, restarts a daemon that binds `listen` itself); collects the
 * holder's and the daemon's output lines. Test support only: imports nothing from lib/.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { MAIN, assertBuilt, cliEnv } from './daemon-process';
import { pollUntil } from './mta-sandbox';

const SCRIPT = path.join(__dirname, 'socket-holder.pl');
const PERL = '/usr/bin/perl';

export class SocketHolder {
  readonly lines: string[] = [];
  readonly exited: Promise<number | null>;
  #partial = '';

  private constructor(readonly child: ChildProcess) {
    const collect = (d: Buffer): void => {
      const parts = (this.#partial + d.toString('utf8')).split('\n');
      this.#partial = parts.pop()!;
      this.lines.push(...parts);
    };
    child.stdout!.on('data', collect);
    child.stderr!.on('data', collect);
    this.exited = new Promise((resolve) => child.on('exit', (code) => resolve(code)));
  }

  /**
   * Start the holder and the first daemon on `configFile`; resolves once that daemon listens.
   * `activate`: the holder binds 127.0.0.1:0 and passes it (read `port`); else the daemon binds.
   */
  static async start(configFile: string, activate: boolean, timeoutMs = 20_000): Promise<SocketHolder> {
    assertBuilt();
    if (!fs.existsSync(PERL)) throw new Error(`${PERL} not found: the socket holder needs perl (Debian: perl-base)`);
    const child = spawn(PERL, [SCRIPT, activate ? 'activate' : 'plain', process.execPath, MAIN, 'run', '--config', configFile], {
      env: cliEnv(),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const h = new SocketHolder(child);
    await h.waitForCount(/milter listening on/, 1, timeoutMs);
    return h;
  }

  /** The port the holder bound (activate mode). */
  get port(): number {
    const m = this.lines.map((l) => /^holder: listening on 127\.0\.0\.1:(\d+)$/.exec(l)).find((x) => x !== null);
    if (!m) throw new Error(`the holder bound no port; output:\n${this.lines.join('\n')}`);
    return Number(m[1]);
  }

  /** Pid of the daemon running now. */
  get daemonPid(): number {
    const pids = this.lines.flatMap((l) => /^holder: started daemon pid (\d+)$/.exec(l)?.[1] ?? []);
    if (pids.length === 0) throw new Error('no daemon started');
    return Number(pids[pids.length - 1]);
  }

  matching(re: RegExp): string[] {
    return this.lines.filter((l) => re.test(l));
  }

  async waitForCount(re: RegExp, n: number, timeoutMs: number): Promise<void> {
    await pollUntil(
      () => (this.matching(re).length >= n ? true : undefined),
      timeoutMs,
      () => `fewer than ${n} lines matching ${re}; output tail:\n${this.lines.slice(-40).join('\n')}`,
      20,
    );
  }

  /** SIGTERM the daemon (as `systemctl restart` does); resolves once its successor listens. */
  async restartDaemon(timeoutMs = 30_000): Promise<void> {
    const started = this.matching(/milter listening on/).length;
    process.kill(this.daemonPid, 'SIGTERM');
    await this.waitForCount(/milter listening on/, started + 1, timeoutMs);
  }

  /** SIGTERM the holder (it stops the daemon first); SIGKILL both after `timeoutMs`. */
  async stop(timeoutMs = 20_000): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    const daemon = this.lines.length > 0 ? this.daemonPidOrUndefined() : undefined;
    this.child.kill('SIGTERM');
    const timer = setTimeout(() => {
      if (daemon !== undefined) try { process.kill(daemon, 'SIGKILL'); } catch { /* gone */ }
      this.child.kill('SIGKILL');
    }, timeoutMs);
    await this.exited;
    clearTimeout(timer);
  }

  private daemonPidOrUndefined(): number | undefined {
    try {
      return this.daemonPid;
    } catch {
      return undefined;
    }
  }
}
