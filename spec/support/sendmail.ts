/**
 * A throwaway real Sendmail 8.17 on loopback for integration specs. The Debian packages are fetched
 * once with `apt-get download` + `dpkg -x` into .cache/sendmail/ (they conflict with postfix, so they
 * are never installed); a non-setgid copy runs with LD_LIBRARY_PATH, from a .cf built with m4, inside
 * `unshare -m -u` (DNS guard, dotted host name, private /dev with a syslog socket we read).
 * Delivery goes through a local mailer script to one file per recipient. Imports nothing from lib/.
 */
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { Delivery, readDeliveries } from './delivered-mail';
import {
  assertCanUnshare, dnsGuardShell, freePorts, makeHarnessDir, pidAlive, pidsWithEnv, pollUntil, readPidFile,
  runCommand, runOrThrow, shq, signal, tailFile, verifyDnsGuard,
} from './mta-sandbox';

export interface SendmailListenerOptions {
  /** DAEMON_OPTIONS Name= (the `{daemon_name}` macro); default: the listener's name. */
  daemonName?: string;
}

export interface SendmailOptions {
  /** Our milter's address, in our form (`inet:127.0.0.1:PORT`, `unix:/path`) or Sendmail's (`inet:PORT@127.0.0.1`). */
  milter?: string;
  /** What Sendmail does when the milter is unavailable: accept = no F= flag (default), tempfail = F=T, reject = F=R. */
  milterDefaultAction?: 'accept' | 'tempfail' | 'reject';
  /** INPUT_MAIL_FILTER T= value; default 'C:10s;S:30s;R:30s;E:5m'. */
  milterTimeouts?: string;
  /** Extra daemons by name, each on its own port (`ports[name]`). */
  listeners?: Record<string, SendmailListenerOptions>;
  /** Recipient domains accepted at RCPT (others get 550); default ['example.test']. */
  domains?: string[];
  /** Extra .mc lines, inserted before MAILER_DEFINITIONS. */
  mc?: string[];
  /** Default 'mx.harness.test' (also the namespace's host name). */
  hostname?: string;
}

export interface SendmailInstance {
  readonly dir: string;
  readonly smtpPort: number;
  /** Every daemon's port by name; the main one is 'smtp' (Name=MTA-harness). */
  readonly ports: Readonly<Record<string, number>>;
  readonly daemonPid: number;
  /** Sendmail version from the package, e.g. '8.17.1.9-2+deb12u2'. */
  readonly version: string;
  delivered(): Delivery[];
  waitForDelivered(n: number, timeoutMs?: number): Promise<Delivery[]>;
  /** Sendmail's syslog output (caught on the namespace's /dev/log). */
  maillog(): string;
  stop(): Promise<void>;
}

const REPO_ROOT = path.resolve(__dirname, '..', '..');
export const SENDMAIL_CACHE = path.join(REPO_ROOT, '.cache', 'sendmail');
const PACKAGES = ['sendmail-bin', 'sendmail-base', 'sendmail-cf', 'libwrap0'];
const MARKER_ENV = 'TDC_SENDMAIL_HARNESS';

interface SendmailDist {
  root: string;
  binary: string;
  m4: string;
  cfDir: string;
  libDir: string;
  version: string;
}

/**
 * Fetches and unpacks the packages once (under flock, so parallel workers share one copy). Runs
 * `apt-get update` only when `apt-get download` fails, and fetches m4 the same way when it is missing.
 */
export async function fetchSendmail(): Promise<SendmailDist> {
  const root = path.join(SENDMAIL_CACHE, 'root');
  const marker = path.join(SENDMAIL_CACHE, 'complete');
  if (!fs.existsSync(marker)) {
    fs.mkdirSync(SENDMAIL_CACHE, { recursive: true });
    const script = `
set -e
cd ${shq(SENDMAIL_CACHE)}
[ -e complete ] && exit 0
rm -rf debs root bin && mkdir -p debs root bin
pkgs="${PACKAGES.join(' ')}"
command -v m4 >/dev/null 2>&1 || pkgs="$pkgs m4"
cd debs
dl() { apt-get -q -o APT::Sandbox::User=root download $pkgs; }
dl || { apt-get -qq update && dl; }
for f in *.deb; do dpkg-deb -x "$f" ../root; done
dpkg-deb -f sendmail-bin_*.deb Version > ../version
cd ..
cp root/usr/libexec/sendmail/sendmail bin/sendmail && chmod 0755 bin/sendmail
touch complete
`;
    const r = await runCommand('flock', [path.join(SENDMAIL_CACHE, '.lock'), 'sh', '-c', script], { timeoutMs: 300_000 });
    if (r.code !== 0) {
      throw new Error(`sendmail harness: fetching ${PACKAGES.join(', ')} with apt-get download failed (exit ${r.code}):\n${r.stdout}${r.stderr}`);
    }
  }
  const m4 = fs.existsSync(path.join(root, 'usr/bin/m4')) ? path.join(root, 'usr/bin/m4') : 'm4';
  return {
    root,
    binary: path.join(SENDMAIL_CACHE, 'bin', 'sendmail'),
    m4,
    cfDir: path.join(root, 'usr/share/sendmail/cf'),
    libDir: path.join(root, 'usr/lib/x86_64-linux-gnu'),
    version: fs.readFileSync(path.join(SENDMAIL_CACHE, 'version'), 'utf8').trim(),
  };
}

/** `inet:HOST:PORT` / `unix:/path` (our form) → Sendmail's `inet:PORT@HOST` / `local:/path`. */
export function sendmailSocketSpec(addr: string): string {
  const inet = /^inet:(\d{1,3}(?:\.\d{1,3}){3}):(\d+)$/.exec(addr);
  if (inet !== null) return `inet:${inet[2]}@${inet[1]}`;
  const inet6 = /^inet6:\[([0-9a-fA-F:]+)\]:(\d+)$/.exec(addr);
  if (inet6 !== null) return `inet6:${inet6[2]}@${inet6[1]}`;
  const unix = /^(?:unix|local):(\/.+)$/.exec(addr);
  if (unix !== null) return `local:${unix[1]}`;
  if (/^(inet6?:\d+@|local:\/)/.test(addr)) return addr;
  throw new Error(`sendmail harness: cannot use milter address ${addr}`);
}

function mcText(dir: string, ports: Record<string, number>, o: SendmailOptions): string {
  const domains = o.domains ?? ['example.test'];
  const flag = { accept: '', tempfail: 'F=T, ', reject: 'F=R, ' }[o.milterDefaultAction ?? 'accept'];
  const q = (s: string): string => `\`${s}'`;
  const def = (k: string, v: string): string => `define(${q(k)}, ${q(v)})dnl`;
  const lines = [
    'divert(-1)', 'divert(0)dnl',
    `VERSIONID(${q('tdc-milter test harness')})dnl`,
    `OSTYPE(${q('linux')})dnl`,
    def('confDOMAIN_NAME', o.hostname ?? 'mx.harness.test'),
    def('confDONT_PROBE_INTERFACES', 'True'),
    def('confTO_IDENT', '0'),
    def('confQUEUE_LA', '1000'),
    def('confREFUSE_LA', '1000'),
    def('confDELAY_LA', '0'),
    def('QUEUE_DIR', `${dir}/queue`),
    def('confPID_FILE', `${dir}/run/sendmail.pid`),
    def('ALIAS_FILE', ''),
    def('STATUS_FILE', `${dir}/etc/statistics`),
    def('confSERVICE_SWITCH_FILE', `${dir}/etc/service.switch`),
    def('confHOSTS_FILE', '/etc/hosts'),
    def('confLOG_LEVEL', '14'),
    def('confMILTER_LOG_LEVEL', '14'),
    def('confPRIVACY_FLAGS', 'noexpn,novrfy'),
    def('confAUTH_MECHANISMS', ''),
    def('confSMTP_LOGIN_MSG', '$j Sendmail $v (harness); $b'),
    `FEATURE(${q('no_default_msa')})dnl`,
    `FEATURE(${q('nocanonify')})dnl`,
    `FEATURE(${q('accept_unresolvable_domains')})dnl`,
    `DAEMON_OPTIONS(${q(`Family=inet, Name=MTA-harness, Addr=127.0.0.1, Port=${ports.smtp}`)})dnl`,
    ...Object.entries(o.listeners ?? {}).map(
      ([name, l]) => `DAEMON_OPTIONS(${q(`Family=inet, Name=${l.daemonName ?? name}, Addr=127.0.0.1, Port=${ports[name]}`)})dnl`,
    ),
    ...(o.milter === undefined
      ? []
      : [`INPUT_MAIL_FILTER(${q('harness')}, ${q(`S=${sendmailSocketSpec(o.milter)}, ${flag}T=${o.milterTimeouts ?? 'C:10s;S:30s;R:30s;E:5m'}`)})dnl`]),
    ...(o.mc ?? []),
    'MAILER_DEFINITIONS',
    // One process per recipient; S = keep root; no D/F/M flags, so Sendmail adds no Date/From/Message-Id.
    `Mharness,\tP=${dir}/bin/deliver, F=lsSn8, S=EnvFromL/HdrFromL, R=EnvToL/HdrToL, T=DNS/RFC822/X-Unix, A=deliver $f $u $h`,
    // Ruleset 0 sends every address (senders too, gotcha 15) to the harness mailer.
    'LOCAL_RULE_0',
    'R$+ < @ $+ . >\t$#harness $@ $2 $: $1',
    'R$+ < @ $+ >\t$#harness $@ $2 $: $1',
    'R$+\t$#harness $@ $j $: $1',
    'LOCAL_RULESETS',
    'SLocal_check_rcpt',
    'R$*\t$: $>canonify $1',
    ...domains.flatMap((d) => [`R$* < @ ${d} . > $*\t$@ OK`, `R$* < @ ${d} > $*\t$@ OK`]),
    `R$*\t$#error $@ 5.1.1 $: "550 harness delivers only to ${domains.join(', ')}"`,
  ];
  return lines.join('\n') + '\n';
}

function deliverScript(dir: string): string {
  return `#!/bin/sh
# deliver SENDER USER HOST: one file per recipient, written under a dot name then renamed.
n=$(/bin/date +%s%N).$$
t=${dir}/mailbox/.tmp.$n
{ printf 'Return-Path: <%s>\\nDelivered-To: %s@%s\\n' "$1" "$2" "\${3%.}"; /bin/cat; } > "$t" && /bin/mv "$t" ${dir}/mailbox/$n.eml
`;
}

/** Catches syslog(3) records on a unix stream socket (glibc falls back to SOCK_STREAM; records end in NUL). */
function startSyslogCatcher(sock: string, file: string): Promise<net.Server> {
  const out = fs.openSync(file, 'a');
  const server = net.createServer((s) => {
    let buf = '';
    s.on('data', (d: Buffer) => {
      buf += d.toString('latin1');
      let i: number;
      while ((i = buf.search(/[\0\n]/)) >= 0) {
        const rec = buf.slice(0, i).replace(/^<\d+>/, '');
        buf = buf.slice(i + 1);
        if (rec !== '') fs.writeSync(out, rec + '\n');
      }
    });
    s.on('error', () => undefined);
  });
  server.on('close', () => fs.closeSync(out));
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(sock, () => {
      fs.chmodSync(sock, 0o666);
      resolve(server);
    });
  });
}

/** True when something listens on 127.0.0.1:port (from /proc/net/tcp; a probe connection would be an SMTP session). */
function listening(port: number): boolean {
  const hex = `0100007F:${port.toString(16).toUpperCase().padStart(4, '0')}`;
  return fs.readFileSync('/proc/net/tcp', 'latin1').split('\n').some((l) => {
    const f = l.trim().split(/\s+/);
    return f[1] === hex && f[3] === '0A';
  });
}

async function reap(dir: string, pid: number | undefined, timeoutMs: number): Promise<void> {
  if (pid !== undefined) signal(pid, 'SIGTERM');
  const gone = (): true | undefined =>
    (pid === undefined || !pidAlive(pid)) && pidsWithEnv(MARKER_ENV, dir).length === 0 ? true : undefined;
  try {
    await pollUntil(gone, timeoutMs, () => `sendmail in ${dir} still running`, 50);
  } catch {
    for (const p of pidsWithEnv(MARKER_ENV, dir)) signal(p, 'SIGKILL');
    await pollUntil(gone, 5000, () => `sendmail in ${dir} survived SIGKILL`, 50);
  }
}

export async function startSendmail(opts: SendmailOptions = {}): Promise<SendmailInstance> {
  assertCanUnshare('sendmail harness');
  const dist = await fetchSendmail();
  const names = Object.keys(opts.listeners ?? {});
  if (names.includes('smtp')) throw new Error("sendmail harness: listener name 'smtp' is reserved");
  const hostname = opts.hostname ?? 'mx.harness.test';
  if (!hostname.includes('.')) throw new Error('sendmail harness: the host name needs a dot (gotcha 12)');

  const dir = makeHarnessDir('tdc-sm-');
  let pid: number | undefined;
  let syslog: net.Server | undefined;
  const logFile = path.join(dir, 'syslog');
  try {
    for (const sub of ['etc', 'run', 'bin', 'mailbox']) fs.mkdirSync(path.join(dir, sub), { mode: 0o755 });
    fs.mkdirSync(path.join(dir, 'queue'), { mode: 0o700 });
    fs.writeFileSync(path.join(dir, 'bin', 'deliver'), deliverScript(dir), { mode: 0o755 });
    fs.writeFileSync(path.join(dir, 'etc', 'service.switch'), 'hosts files\naliases files\n');
    fs.writeFileSync(path.join(dir, 'etc', 'statistics'), '');
    const sock = path.join(dir, 'run', 'log.sock');
    syslog = await startSyslogCatcher(sock, logFile);
    const guard = dnsGuardShell(dir);
    const cf = path.join(dir, 'etc', 'sendmail.cf');

    let ports: Record<string, number> = {};
    for (let attempt = 1; ; attempt++) {
      const free = await freePorts(1 + names.length);
      ports = { smtp: free[0]! };
      names.forEach((n, i) => (ports[n] = free[i + 1]!));
      const mc = path.join(dir, 'etc', 'sendmail.mc');
      fs.writeFileSync(mc, mcText(dir, ports, opts));
      const cfText = await runOrThrow(dist.m4, [`-D_CF_DIR_=${dist.cfDir}/`, path.join(dist.cfDir, 'm4', 'cf.m4'), mc], 'sendmail harness: m4', {
        env: { ...process.env, PATH: `${path.join(dist.root, 'usr/bin')}:${process.env.PATH ?? '/usr/bin:/bin'}` },
      });
      fs.writeFileSync(cf, cfText);
      const script = [
        'set -e',
        `hostname ${shq(hostname)}`,
        ...guard,
        // Private /dev: the devices Sendmail needs plus /dev/log pointing at our catcher (gotcha 14).
        'mount -t tmpfs -o mode=755 tmpfs /dev',
        'mknod -m 666 /dev/null c 1 3; mknod -m 666 /dev/zero c 1 5; mknod -m 666 /dev/full c 1 7',
        'mknod -m 666 /dev/random c 1 8; mknod -m 666 /dev/urandom c 1 9; mknod -m 666 /dev/tty c 5 0',
        `ln -s /proc/self/fd /dev/fd; ln -s ${shq(sock)} /dev/log`,
        `exec ${shq(dist.binary)} -C ${shq(cf)} -bd -q1m`,
      ].join('\n');
      const env = { PATH: '/usr/sbin:/usr/bin:/sbin:/bin', LD_LIBRARY_PATH: dist.libDir, [MARKER_ENV]: dir };
      const r = await runCommand('unshare', ['-m', '-u', '--propagation', 'private', 'sh', '-c', script], { env, timeoutMs: 60_000 });
      if (r.code !== 0) throw new Error(`sendmail harness: start failed (exit ${r.code})\n${r.stdout}${r.stderr}\n${tailFile(logFile)}`);
      const pidFile = path.join(dir, 'run', 'sendmail.pid');
      const state = await pollUntil(
        () => {
          const log = fs.readFileSync(logFile, 'latin1');
          if (/cannot bind: Address already in use/.test(log)) return 'busy';
          const p = readPidFile(pidFile);
          if (p !== undefined && Object.values(ports).every(listening)) return 'up';
          return undefined;
        },
        15_000,
        () => `sendmail did not start listening on ${JSON.stringify(ports)}\n${tailFile(logFile)}`,
      );
      pid = readPidFile(pidFile);
      if (state === 'up') break;
      await reap(dir, pid, 5000);
      pid = undefined;
      fs.rmSync(pidFile, { force: true });
      fs.truncateSync(logFile);
      if (attempt >= 4) throw new Error(`sendmail harness: ports kept being taken\n${tailFile(logFile)}`);
    }
    if (pid === undefined || !pidAlive(pid)) throw new Error(`sendmail harness: daemon not running\n${tailFile(logFile)}`);
    verifyDnsGuard(pid, 'sendmail harness');
    return makeInstance(dir, ports, pid, dist.version, syslog, logFile);
  } catch (err) {
    await reap(dir, pid, 5000).catch(() => undefined);
    syslog?.close();
    fs.rmSync(dir, { recursive: true, force: true });
    throw err;
  }
}

function makeInstance(
  dir: string, ports: Record<string, number>, pid: number, version: string, syslog: net.Server, logFile: string,
): SendmailInstance {
  const cache = new Map<string, Delivery>();
  const boxes = [path.join(dir, 'mailbox')];
  let stopped: Promise<void> | undefined;
  return {
    dir,
    smtpPort: ports.smtp!,
    ports: Object.freeze({ ...ports }),
    daemonPid: pid,
    version,
    delivered: () => readDeliveries(boxes, cache),
    waitForDelivered: (n, timeoutMs = 20_000) =>
      pollUntil(
        () => {
          const d = readDeliveries(boxes, cache);
          return d.length >= n ? d : undefined;
        },
        timeoutMs,
        () => `sendmail delivered ${readDeliveries(boxes, cache).length} of ${n} messages\n--- log tail ---\n${tailFile(logFile, 30)}`,
      ),
    maillog: () => (fs.existsSync(logFile) ? fs.readFileSync(logFile, 'utf8') : ''),
    stop() {
      stopped ??= (async () => {
        await reap(dir, pid, 10_000);
        await new Promise<void>((resolve) => syslog.close(() => resolve()));
        fs.rmSync(dir, { recursive: true, force: true });
      })();
      return stopped;
    },
  };
}
