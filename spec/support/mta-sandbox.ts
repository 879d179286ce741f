/**
 * Shared plumbing for the real-MTA test harnesses (postfix.ts, sendmail.ts): temp directories the
 * `postfix` user can search, free loopback ports, the DNS guard (a private mount namespace where
 * nsswitch says `hosts: files` and resolv.conf points at 127.0.0.1), child commands and process
 * waits via /proc. Test support only: imports nothing from lib/.
 */
import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';

export interface CommandResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs a command without a shell; never throws for a non-zero exit (look at `code`). */
export function runCommand(
  file: string,
  args: string[],
  opts: { env?: NodeJS.ProcessEnv; timeoutMs?: number; cwd?: string } = {},
): Promise<CommandResult> {
  return new Promise((resolve, reject) => {
    execFile(
      file,
      args,
      { env: opts.env ?? process.env, timeout: opts.timeoutMs ?? 60_000, cwd: opts.cwd, maxBuffer: 16 << 20 },
      (err, stdout, stderr) => {
        if (err !== null && typeof err.code !== 'number') {
          reject(new Error(`${file} ${args.join(' ')}: ${err.message}\n${stderr}`));
          return;
        }
        resolve({ code: err === null ? 0 : Number(err.code), stdout, stderr });
      },
    );
  });
}

export async function runOrThrow(file: string, args: string[], what: string, opts: Parameters<typeof runCommand>[2] = {}): Promise<string> {
  const r = await runCommand(file, args, opts);
  if (r.code !== 0) throw new Error(`${what} failed (exit ${r.code}): ${file} ${args.join(' ')}\n${r.stdout}${r.stderr}`);
  return r.stdout;
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Polls `probe` (a real MTA is outside our clock) until it returns a value or the time is up. */
export async function pollUntil<T>(probe: () => T | undefined, timeoutMs: number, describe: () => string, intervalMs = 25): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = probe();
    if (v !== undefined) return v;
    if (Date.now() >= deadline) throw new Error(`timed out after ${timeoutMs} ms: ${describe()}`);
    await sleep(intervalMs);
  }
}

/** A fresh 0755 directory under /tmp, whose parents user postfix can search (gotcha 5). */
export function makeHarnessDir(prefix: string): string {
  const dir = fs.mkdtempSync(path.join('/tmp', prefix));
  fs.chmodSync(dir, 0o755);
  for (let p = path.dirname(dir); ; p = path.dirname(p)) {
    const mode = fs.statSync(p).mode;
    if ((mode & 0o001) === 0) throw new Error(`harness: ${p} is not searchable by other users (mode ${(mode & 0o777).toString(8)}); postfix could not reach ${dir}`);
    if (p === '/') break;
  }
  return dir;
}

/** A port that was free on 127.0.0.1 a moment ago (the caller retries on EADDRINUSE). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr !== null ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

export async function freePorts(n: number): Promise<number[]> {
  const ports = new Set<number>();
  while (ports.size < n) ports.add(await freePort());
  return [...ports];
}

/** Sets atime/mtime 10 s into the past so Postfix does not wait for the file to "settle" (gotcha 1). */
export function backdate(file: string): void {
  const t = Date.now() / 1000 - 10;
  fs.utimesSync(file, t, t);
}

// ---- DNS guard ------------------------------------------------------------------------------

/**
 * Shell lines that, run inside `unshare -m`, hide the host's resolver: `hosts: files` and a
 * nameserver on 127.0.0.1 (nothing listens on port 53 there, so nothing leaves the machine), or on
 * `nameserver`, a loopback DNS server of the spec's own on port 53.
 */
export function dnsGuardShell(dir: string, nameserver = '127.0.0.1'): string[] {
  const nss = path.join(dir, 'guard-nsswitch.conf');
  const resolv = path.join(dir, 'guard-resolv.conf');
  fs.writeFileSync(nss, 'passwd: files\ngroup: files\nshadow: files\nhosts: files\nnetworks: files\nservices: files\nprotocols: files\n');
  if (!nameserver.startsWith('127.')) throw new Error(`DNS guard: nameserver ${nameserver} is not on loopback`);
  fs.writeFileSync(resolv, `nameserver ${nameserver}\noptions timeout:1 attempts:1\n`);
  return [`mount --bind ${shq(nss)} /etc/nsswitch.conf`, `mount --bind ${shq(resolv)} /etc/resolv.conf`];
}

/** Fails loudly unless the process sees the guarded files (checked through /proc/PID/root). */
export function verifyDnsGuard(pid: number, what: string, nameserver = '127.0.0.1'): void {
  let nss: string;
  let resolv: string;
  try {
    nss = fs.readFileSync(`/proc/${pid}/root/etc/nsswitch.conf`, 'utf8');
    resolv = fs.readFileSync(`/proc/${pid}/root/etc/resolv.conf`, 'utf8');
  } catch (err) {
    throw new Error(`${what}: cannot check the DNS guard of PID ${pid}: ${(err as Error).message}`);
  }
  const hosts = /^hosts:\s*(.*)$/m.exec(nss)?.[1]?.trim();
  const servers = [...resolv.matchAll(/^nameserver\s+(\S+)/gm)].map((m) => m[1]);
  if (hosts !== 'files' || servers.length !== 1 || servers[0] !== nameserver) {
    throw new Error(`${what}: DNS guard not in place for PID ${pid} (hosts: ${hosts}; nameservers: ${servers.join(',')}); refusing to run (a lookup would leave the machine)`);
  }
}

/** `unshare` and root are required for the guard; say so instead of running unguarded. */
export function assertCanUnshare(what: string): void {
  if (typeof process.getuid === 'function' && process.getuid() !== 0) {
    throw new Error(`${what}: the harness must run as root (it uses unshare -m and bind mounts to keep DNS on the machine)`);
  }
  if (!fs.existsSync('/usr/bin/unshare') && !fs.existsSync('/bin/unshare')) {
    throw new Error(`${what}: unshare(1) not found (package util-linux); it is needed for the DNS guard`);
  }
}

/** Single-quotes a word for sh. */
export function shq(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

// ---- processes -------------------------------------------------------------------------------

/** True while the PID exists and is not a zombie (zombies are reaped late here, gotcha 21). */
export function pidAlive(pid: number): boolean {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'latin1');
    const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
    return state !== 'Z' && state !== 'X';
  } catch {
    return false;
  }
}

/** Live PIDs whose environment holds `name=value` exactly (how we find every MTA child). */
export function pidsWithEnv(name: string, value: string): number[] {
  const needle = `${name}=${value}`;
  const out: number[] = [];
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const pid = Number(entry);
    if (pid === process.pid) continue;
    try {
      const env = fs.readFileSync(`/proc/${entry}/environ`, 'latin1').split('\0');
      if (env.includes(needle) && pidAlive(pid)) out.push(pid);
    } catch {
      // gone meanwhile, or a kernel thread
    }
  }
  return out;
}

export function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch {
    // already gone
  }
}

/** Reads a PID file (first number in it); undefined when missing. */
export function readPidFile(file: string): number | undefined {
  try {
    const m = /\d+/.exec(fs.readFileSync(file, 'latin1'));
    return m === null ? undefined : Number(m[0]);
  } catch {
    return undefined;
  }
}

/** Last `n` lines of a text file ('' when missing), for error messages. */
export function tailFile(file: string, n = 40): string {
  try {
    return fs.readFileSync(file, 'utf8').split('\n').slice(-n).join('\n');
  } catch {
    return '';
  }
}
