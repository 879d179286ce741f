/**
 * A throwaway real Postfix on loopback for integration specs: its own config/queue/data/Maildir under
 * /tmp/tdc-pf-XXXX, `postfix -c DIR/etc start` inside a private mount namespace that keeps DNS on the
 * machine, smtpd listeners on 127.0.0.1, delivery to one Maildir (or relay to a loopback port).
 * Test support only: imports nothing from lib/.
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Delivery, readDeliveries } from './delivered-mail';
import {
  assertCanUnshare, backdate, dnsGuardShell, freePorts, makeHarnessDir, pidAlive, pidsWithEnv, pollUntil,
  readPidFile, runCommand, runOrThrow, shq, signal, tailFile, verifyDnsGuard,
} from './mta-sandbox';

export interface PostfixListenerOptions {
  /** `-o name=value` overrides for this smtpd, e.g. `{ milter_macro_daemon_name: 'ORIGINATING' }`. */
  overrides?: Record<string, string>;
  /** Offer AUTH PLAIN/LOGIN (Cyrus SASL, sasldb holding `saslUsers`) on this listener only. */
  saslAuth?: boolean;
}

export interface PostfixOptions {
  /** The `smtpd_milters` value, e.g. `inet:127.0.0.1:PORT` or `unix:/path`; none when undefined. */
  milters?: string;
  /** `milter_default_action`; default 'accept'. */
  milterDefaultAction?: 'accept' | 'tempfail' | 'reject' | 'quarantine';
  /** Extra smtpd listeners by name; each gets its own port (`ports[name]`). */
  listeners?: Record<string, PostfixListenerOptions>;
  /** SASL users (name → password) for listeners with `saslAuth`; default `{ alice: 'alice-secret' }`.
   *  The realm is myhostname, so `{auth_authen}` reads `alice@mx.harness.test`. */
  saslUsers?: Record<string, string>;
  /** Domains delivered to the Maildir; default ['example.test']. */
  virtualDomains?: string[];
  /** Relay every other domain to [127.0.0.1]:relayPort (instead of bouncing it). */
  relayPort?: number;
  /** Extra main.cf lines (`key = value`), written last so they win. */
  mainCf?: string[];
  /** Default 'mx.harness.test'. */
  myhostname?: string;
}

export interface PostfixInstance {
  readonly dir: string;
  /** Port of the main smtpd listener (also `ports.smtp`). */
  readonly smtpPort: number;
  /** Every listener's port by name; the main one is 'smtp'. */
  readonly ports: Readonly<Record<string, number>>;
  readonly masterPid: number;
  readonly saslUsers: Readonly<Record<string, string>>;
  /** Messages delivered to the Maildir so far (one per recipient), oldest first. */
  delivered(): Delivery[];
  /** Waits until at least `n` deliveries exist; throws with the maillog tail on timeout. */
  waitForDelivered(n: number, timeoutMs?: number): Promise<Delivery[]>;
  /** The instance's log (maillog_file). */
  maillog(): string;
  /** Appends/overrides main.cf lines and runs `postfix reload`. */
  reconfigure(mainCf: string[]): Promise<void>;
  /** SIGTERM master, wait until it and all its children are gone, remove the directory. */
  stop(): Promise<void>;
}

const POSTFIX = '/usr/sbin/postfix';
const DEFAULT_SASL_USERS: Record<string, string> = { alice: 'alice-secret' };

/**
 * The master.cf services every throwaway loopback instance shares (harness and bench), after its
 * own smtpd lines. No chroot anywhere (gotcha 3). Services start on demand, so the harness's
 * local/virtual delivery and the bench's TLS client (tlsmgr, tlsproxy) can share one list.
 */
export const LOOPBACK_MASTER_SERVICES = `
pickup     unix  n - n 60 1 pickup
cleanup    unix  n - n - 0 cleanup
qmgr       unix  n - n 300 1 qmgr
tlsmgr     unix  - - n 1000? 1 tlsmgr
rewrite    unix  - - n - - trivial-rewrite
bounce     unix  - - n - 0 bounce
defer      unix  - - n - 0 bounce
trace      unix  - - n - 0 bounce
verify     unix  - - n - 1 verify
flush      unix  n - n 1000? 0 flush
proxymap   unix  - - n - - proxymap
proxywrite unix  - - n - 1 proxymap
smtp       unix  - - n - - smtp
relay      unix  - - n - - smtp
showq      unix  n - n - - showq
error      unix  - - n - - error
retry      unix  - - n - - error
discard    unix  - - n - - discard
local      unix  - n n - - local
virtual    unix  - n n - - virtual
lmtp       unix  - - n - - lmtp
anvil      unix  - - n - 1 anvil
scache     unix  - - n - 1 scache
tlsproxy   unix  - - n - 0 tlsproxy
postlog    unix-dgram n - n - 1 postlogd
`;

/**
 * The main.cf lines every throwaway loopback instance shares (harness and bench): its own
 * directories, loopback only, no aliases, DNS off, its own log file, no artificial delays.
 */
export function loopbackMainCf(dir: string, myhostname: string, mydomain: string): string[] {
  return [
    'compatibility_level = 3.6',
    `config_directory = ${dir}/etc`,
    `queue_directory = ${dir}/spool`,
    `data_directory = ${dir}/data`,
    'mail_owner = postfix',
    'setgid_group = postdrop',
    `myhostname = ${myhostname}`,
    `mydomain = ${mydomain}`,
    'myorigin = $myhostname',
    'mydestination =',
    'inet_interfaces = loopback-only',
    'inet_protocols = ipv4',
    'mynetworks = 127.0.0.0/8',
    'alias_maps =',
    'alias_database =',
    'local_recipient_maps =',
    'biff = no',
    // DNS off in Postfix itself; the mount namespace guard backs this up (gotcha 7).
    'smtp_dns_support_level = disabled',
    'disable_dns_lookups = yes',
    'smtp_host_lookup = native',
    'lmtp_host_lookup = native',
    `maillog_file = ${dir}/maillog`,
    `maillog_file_prefixes = ${dir}`,
    'smtpd_banner = $myhostname ESMTP Postfix (harness)',
    'smtpd_error_sleep_time = 0s',
    'in_flow_delay = 0s',
    'queue_run_delay = 1s',
    'minimal_backoff_time = 1s',
    'maximal_backoff_time = 2s',
  ];
}

function mainCf(dir: string, o: PostfixOptions, sasl: boolean): string {
  const domains = o.virtualDomains ?? ['example.test'];
  const lines = [
    '# generated by spec/support/postfix.ts',
    ...loopbackMainCf(dir, o.myhostname ?? 'mx.harness.test', 'harness.test'),
    'maximal_queue_lifetime = 5m',
    'bounce_queue_lifetime = 5m',
    'delay_warning_time = 0h',
    'smtp_connect_timeout = 5s',
    'message_size_limit = 20480000',
    `virtual_mailbox_domains = ${domains.join(' ')}`,
    `virtual_mailbox_base = ${dir}`,
    'virtual_mailbox_maps = static:maildir/',
    'virtual_uid_maps = static:65534',
    'virtual_gid_maps = static:65534',
    'virtual_mailbox_limit = 0',
    ...(o.relayPort === undefined
      ? [`default_transport = error:5.1.1 harness delivers only to ${domains.join(', ')}`]
      : ['default_transport = smtp', 'relay_transport = smtp', `relayhost = [127.0.0.1]:${o.relayPort}`]),
    `smtpd_milters = ${o.milters ?? ''}`,
    'non_smtpd_milters =',
    `milter_default_action = ${o.milterDefaultAction ?? 'accept'}`,
  ];
  if (sasl) {
    lines.push(
      'smtpd_sasl_type = cyrus',
      `cyrus_sasl_config_path = ${dir}/etc/sasl`,
      'smtpd_sasl_path = smtpd',
      'smtpd_sasl_local_domain = $myhostname',
      'smtpd_sasl_security_options = noanonymous',
      'smtpd_tls_auth_only = no',
    );
  }
  lines.push(...(o.mainCf ?? []));
  return lines.join('\n') + '\n';
}

function masterCf(ports: Record<string, number>, o: PostfixOptions): string {
  const out: string[] = ['# generated by spec/support/postfix.ts', `127.0.0.1:${ports.smtp} inet n - n - - smtpd`];
  for (const [name, l] of Object.entries(o.listeners ?? {})) {
    out.push(`127.0.0.1:${ports[name]} inet n - n - - smtpd`, `  -o syslog_name=postfix/${name}`);
    if (l.saslAuth === true) out.push('  -o smtpd_sasl_auth_enable=yes');
    for (const [k, v] of Object.entries(l.overrides ?? {})) {
      if (/[\s,{}]/.test(k) || /[\s]/.test(v)) throw new Error(`postfix harness: -o ${k}=${v}: no blanks allowed`);
      out.push(`  -o ${k}=${v}`);
    }
  }
  return out.join('\n') + LOOPBACK_MASTER_SERVICES;
}

function writeSasl(dir: string, users: Record<string, string>, realm: string): void {
  const saslDir = path.join(dir, 'etc', 'sasl');
  fs.mkdirSync(saslDir, { recursive: true });
  const db = path.join(saslDir, 'sasldb2');
  fs.writeFileSync(
    path.join(saslDir, 'smtpd.conf'),
    `pwcheck_method: auxprop\nauxprop_plugin: sasldb\nsasldb_path: ${db}\nmech_list: PLAIN LOGIN\n`,
  );
  if (!fs.existsSync('/usr/sbin/saslpasswd2')) {
    throw new Error('postfix harness: saslpasswd2 not found; install Debian packages sasl2-bin and libsasl2-modules (.ci/run does)');
  }
  for (const [user, password] of Object.entries(users)) {
    execFileSync('/usr/sbin/saslpasswd2', ['-f', db, '-p', '-c', '-u', realm, user], { input: password, stdio: ['pipe', 'pipe', 'pipe'] });
  }
  fs.chmodSync(db, 0o644); // smtpd runs as postfix
}

/** Kill whatever is left of an instance (by MAIL_CONFIG in the environment) and wait for it. */
async function reap(dir: string, masterPid: number | undefined, timeoutMs: number): Promise<void> {
  const etc = path.join(dir, 'etc');
  if (masterPid !== undefined) signal(masterPid, 'SIGTERM');
  const gone = (): true | undefined =>
    (masterPid === undefined || !pidAlive(masterPid)) && pidsWithEnv('MAIL_CONFIG', etc).length === 0 ? true : undefined;
  try {
    await pollUntil(gone, timeoutMs, () => `postfix in ${dir} still running`, 50);
  } catch {
    for (const pid of pidsWithEnv('MAIL_CONFIG', etc)) signal(pid, 'SIGKILL');
    await pollUntil(gone, 5000, () => `postfix in ${dir} survived SIGKILL`, 50);
  }
}

export async function startPostfix(opts: PostfixOptions = {}): Promise<PostfixInstance> {
  if (!fs.existsSync(POSTFIX)) {
    throw new Error(`postfix harness: ${POSTFIX} not found; install the Debian package postfix (.ci/run does it, without starting the system instance)`);
  }
  assertCanUnshare('postfix harness');
  const listenerNames = Object.keys(opts.listeners ?? {});
  if (listenerNames.includes('smtp')) throw new Error("postfix harness: listener name 'smtp' is reserved");
  const sasl = Object.values(opts.listeners ?? {}).some((l) => l.saslAuth === true);
  const saslUsers = sasl ? { ...(opts.saslUsers ?? DEFAULT_SASL_USERS) } : {};

  const dir = makeHarnessDir('tdc-pf-');
  let masterPid: number | undefined;
  try {
    for (const sub of ['etc', 'spool']) fs.mkdirSync(path.join(dir, sub), { mode: 0o755 });
    fs.mkdirSync(path.join(dir, 'data'), { mode: 0o700 });
    execFileSync('chown', ['postfix:postfix', path.join(dir, 'data')]);
    fs.mkdirSync(path.join(dir, 'maildir'), { mode: 0o700 });
    fs.chownSync(path.join(dir, 'maildir'), 65534, 65534);
    if (sasl) writeSasl(dir, saslUsers, opts.myhostname ?? 'mx.harness.test');
    const guard = dnsGuardShell(dir);

    let ports: Record<string, number> = {};
    for (let attempt = 1; ; attempt++) {
      const free = await freePorts(1 + listenerNames.length);
      ports = { smtp: free[0]! };
      listenerNames.forEach((n, i) => (ports[n] = free[i + 1]!));
      const mainFile = path.join(dir, 'etc', 'main.cf');
      const masterFile = path.join(dir, 'etc', 'master.cf');
      fs.writeFileSync(mainFile, mainCf(dir, opts, sasl));
      fs.writeFileSync(masterFile, masterCf(ports, opts));
      backdate(mainFile);
      backdate(masterFile);
      const script = ['set -e', ...guard, `exec ${POSTFIX} -c ${shq(path.join(dir, 'etc'))} start`].join('\n');
      const r = await runCommand('unshare', ['-m', '--propagation', 'private', 'sh', '-c', script], { timeoutMs: 60_000 });
      if (r.code === 0) break;
      const log = tailFile(path.join(dir, 'maillog'));
      await reap(dir, readPidFile(path.join(dir, 'spool', 'pid', 'master.pid')), 5000);
      if (/Address already in use/.test(log + r.stderr) && attempt < 4) continue;
      throw new Error(`postfix harness: postfix start failed (exit ${r.code}) in ${dir}\n${r.stdout}${r.stderr}\n--- maillog ---\n${log}`);
    }
    masterPid = readPidFile(path.join(dir, 'spool', 'pid', 'master.pid'));
    if (masterPid === undefined || !pidAlive(masterPid)) {
      throw new Error(`postfix harness: no running master after start in ${dir}\n${tailFile(path.join(dir, 'maillog'))}`);
    }
    verifyDnsGuard(masterPid, 'postfix harness');
    return makeInstance(dir, ports, masterPid, saslUsers);
  } catch (err) {
    await reap(dir, masterPid, 5000).catch(() => undefined);
    fs.rmSync(dir, { recursive: true, force: true });
    throw err;
  }
}

function makeInstance(dir: string, ports: Record<string, number>, masterPid: number, saslUsers: Record<string, string>): PostfixInstance {
  const cache = new Map<string, Delivery>();
  const boxes = [path.join(dir, 'maildir', 'new'), path.join(dir, 'maildir', 'cur')];
  const logFile = path.join(dir, 'maillog');
  let stopped: Promise<void> | undefined;
  const inst: PostfixInstance = {
    dir,
    smtpPort: ports.smtp!,
    ports: Object.freeze({ ...ports }),
    masterPid,
    saslUsers: Object.freeze({ ...saslUsers }),
    delivered: () => readDeliveries(boxes, cache),
    async waitForDelivered(n, timeoutMs = 20_000) {
      return pollUntil(
        () => {
          const d = readDeliveries(boxes, cache);
          return d.length >= n ? d : undefined;
        },
        timeoutMs,
        () => `postfix delivered ${readDeliveries(boxes, cache).length} of ${n} messages\n--- maillog tail ---\n${tailFile(logFile, 30)}`,
      );
    },
    maillog: () => (fs.existsSync(logFile) ? fs.readFileSync(logFile, 'utf8') : ''),
    async reconfigure(lines) {
      const mainFile = path.join(dir, 'etc', 'main.cf');
      fs.appendFileSync(mainFile, lines.join('\n') + '\n');
      backdate(mainFile);
      await runOrThrow(POSTFIX, ['-c', path.join(dir, 'etc'), 'reload'], 'postfix reload');
    },
    stop() {
      stopped ??= (async () => {
        await reap(dir, masterPid, 10_000);
        fs.rmSync(dir, { recursive: true, force: true });
      })();
      return stopped;
    },
  };
  return inst;
}
