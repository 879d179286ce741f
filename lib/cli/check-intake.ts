/**
 * `tdc-milter check-intake`: checks the way a copy would go, like posttls-finger: relay or MX, STARTTLS
 * (TLS 1.2+), the certificate, MAIL FROM:<> and RCPT TO, then RSET or (--send) a marked test journal;
 * Nagios exit codes. Imports config, util, journal, the forwarder's router and lib/smtp's pure parts; never milter or policy.
 */
import * as net from 'node:net';
import * as tls from 'node:tls';
import { parseArgs } from 'node:util';
import type { Config, ConfigResult } from '../config';
import { buildJournal } from '../journal';
import { Router, createResolver, type RelaySpec, type Route, type RouteHost } from '../forwarder/route';
import { START_OF_DATA, dotStuff, endOfData } from '../smtp/dot-stuff';
import { parseEhlo } from '../smtp/client-session';
import { replyText } from '../smtp/reply-parser';
import { systemClock } from '../util/clock';
import { describeError } from '../util/errors';
import { SmtpDialogue, type SmtpReply } from './smtp-dialogue';
import { parseStrict } from './args';

export type CheckStatus = 'OK' | 'WARNING' | 'CRITICAL' | 'UNKNOWN';
export const EXIT_CODES: Record<CheckStatus, number> = { OK: 0, WARNING: 1, CRITICAL: 2, UNKNOWN: 3 };

/** A certificate this close to its end is a warning. */
export const CERT_WARN_DAYS = 14;

export interface CheckOptions {
  address: string;
  /** The loaded `relay` setting; unset = MX of the address's domain. */
  relay: RelaySpec | undefined;
  dnsServers: string[] | undefined;
  /** Port of the MX hosts (default 25); the relay carries its own. */
  mxPort: number | undefined;
  send: boolean;
  heloName: string;
  tlsCa: Buffer[];
  connectTimeoutMs: number;
  commandTimeoutMs: number;
  /** [milter] max_message_size: an intake SIZE limit below it is a warning. */
  maxMessageBytes: number;
}

export interface Finding {
  level: CheckStatus;
  text: string;
}

export interface CheckReport {
  address: string;
  status: CheckStatus;
  /** What worked, for the status line when all is well. */
  summary: string;
  findings: Finding[];
  /** Facts in order: route, connection, TLS, certificate, chain. */
  details: string[];
  transcript: string[];
}

export const CHECK_USAGE = `usage: tdc-milter check-intake [ADDRESS] [--dns SERVER ...] [--port PORT] [--send] [--config FILE]
  ADDRESS   the intake address; default: intake_address of the configuration
  --dns     ask this DNS server (IP or IP:PORT) instead of the system's
  --port    port of the MX hosts (default 25; a relay setting carries its own)
  --send    also send a test journal (marked policy=check-intake) instead of RSET
Checks the route (relay, else MX), STARTTLS with TLS 1.2+, the certificate, and that MAIL FROM:<>
and RCPT TO:<ADDRESS> are accepted. Exit 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN (like a Nagios plugin).
`;

const RANK: Record<CheckStatus, number> = { OK: 0, WARNING: 1, UNKNOWN: 2, CRITICAL: 3 };

function worst(findings: Finding[]): CheckStatus {
  return findings.reduce<CheckStatus>((w, f) => (RANK[f.level] > RANK[w] ? f.level : w), 'OK');
}

function connect(address: string, port: number, timeoutMs: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: address, port });
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`no connection within ${timeoutMs / 1000}s`));
    }, timeoutMs);
    socket.once('connect', () => {
      clearTimeout(timer);
      socket.removeAllListeners('error');
      resolve(socket);
    });
    socket.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
  });
}

/** 'mx1.intake.test, DNS:…' → the names a certificate is valid for. */
function certNames(cert: tls.PeerCertificate): string {
  const alt = cert.subjectaltname?.split(', ').map((n) => n.replace(/^(DNS|IP Address):/, '')) ?? [];
  const cn = cert.subject?.CN;
  return alt.length > 0 ? alt.join(', ') : (Array.isArray(cn) ? cn.join(', ') : cn ?? '(none)');
}

function chainLines(leaf: tls.DetailedPeerCertificate): string[] {
  const out: string[] = [];
  const seen = new Set<string>();
  for (let c: tls.DetailedPeerCertificate | undefined = leaf, depth = 0; c && !seen.has(c.fingerprint256); c = c.issuerCertificate, depth++) {
    seen.add(c.fingerprint256);
    out.push(`  ${depth} subject CN=${c.subject?.CN ?? '?'}, issuer CN=${c.issuer?.CN ?? '?'}, valid until ${new Date(c.valid_to).toISOString()}`);
  }
  return out;
}

/** The test journal for --send: a journal report of a small message, marked as coming from check-intake. */
export function testJournal(address: string, hostname: string, now: Date): Buffer {
  const id = `check-intake-${now.getTime().toString(36)}`;
  const body = Buffer.from('This is a test journal sent by "tdc-milter check-intake --send". It can be ignored.\r\n', 'latin1');
  return buildJournal({
    message: {
      queueId: id,
      client: undefined,
      helo: undefined,
      sender: { address: `postmaster@${hostname}`, args: [] },
      recipients: [{ address: `postmaster@${hostname}`, args: [] }],
      headers: [
        { name: 'From', value: ` <postmaster@${hostname}>` },
        { name: 'To', value: ` <postmaster@${hostname}>` },
        { name: 'Subject', value: ' tdc-milter check-intake test journal' },
        { name: 'Message-ID', value: ` <${id}@${hostname}>` },
      ],
      headerValuesExact: true,
      body: [body],
      bodyBytes: body.length,
      oversized: false,
    },
    intakeAddress: address,
    recipients: [`postmaster@${hostname}`],
    policies: ['check-intake'],
    hostname,
    date: now,
    copyId: `${id}.1`,
    remoteIpHeader: 'X-IronPort-RemoteIP',
  });
}

/** OpenSSL's verification codes in words, the code kept for searching. */
const TRUST_CODES: Record<string, string> = {
  DEPTH_ZERO_SELF_SIGNED_CERT: 'self-signed certificate',
  SELF_SIGNED_CERT_IN_CHAIN: 'self-signed certificate in the chain',
  UNABLE_TO_GET_ISSUER_CERT_LOCALLY: 'issuer not among the trusted CAs (system CAs plus tls_ca_file)',
  UNABLE_TO_VERIFY_LEAF_SIGNATURE: 'issuer not among the trusted CAs (system CAs plus tls_ca_file)',
  CERT_HAS_EXPIRED: 'certificate expired',
  CERT_NOT_YET_VALID: 'certificate not yet valid',
};

function trustProblem(code: string): string {
  const words = TRUST_CODES[code];
  return words === undefined ? code : `${words} (${code})`;
}

function describeRoute(route: Route): string {
  const hosts = route.hosts.map((h) => `${h.name} (${h.addresses.length > 0 ? h.addresses.join(', ') : h.failure?.message ?? 'no address'}) port ${h.port}`);
  const how = route.kind === 'relay' ? 'relay' : route.kind === 'mx' ? `MX of ${route.domain}` : route.kind === 'implicit' ? `${route.domain} itself (no MX records)` : 'address literal';
  return `route: ${how}: ${hosts.join('; ')}`;
}

class Check {
  readonly findings: Finding[] = [];
  readonly details: string[] = [];
  transcript: string[] = [];
  summary = '';
  constructor(readonly o: CheckOptions) {}

  add(level: CheckStatus, text: string): void {
    this.findings.push({ level, text });
  }

  /** A reply that is not 2xx: 5xx critical (a hard bounce), 4xx warning (the forwarder retries once). */
  expect2xx(r: SmtpReply, what: string): boolean {
    if (r.code >= 200 && r.code < 300) return true;
    this.add(r.code >= 500 ? 'CRITICAL' : 'WARNING', `${what} answered ${replyText(r)}`);
    return false;
  }

  async run(): Promise<void> {
    const domain = this.o.address.slice(this.o.address.lastIndexOf('@') + 1);
    const router = new Router(createResolver(this.o.dnsServers, this.o.connectTimeoutMs), systemClock, {
      ...(this.o.relay !== undefined ? { relay: this.o.relay } : {}),
      ...(this.o.mxPort !== undefined ? { mxPort: this.o.mxPort } : {}),
    });
    let route: Route;
    try {
      route = await router.route(domain);
    } catch (err) {
      this.add('CRITICAL', `DNS: ${describeError(err)}`);
      return;
    }
    this.details.push(describeRoute(route));
    const unreachable: string[] = [];
    for (const host of route.hosts) {
      for (const address of host.addresses) {
        let socket: net.Socket;
        try {
          socket = await connect(address, host.port, this.o.connectTimeoutMs);
        } catch (err) {
          unreachable.push(`${host.name}[${address}]:${host.port}: ${describeError(err)}`);
          continue;
        }
        // The forwarder tries the next host only when it cannot connect: so does this check.
        if (unreachable.length > 0) this.add('WARNING', `not reachable, the next host was used: ${unreachable.join('; ')}`);
        await this.dialogue(socket, host, address);
        return;
      }
    }
    this.add('CRITICAL', `no host reachable: ${unreachable.join('; ')}`);
  }

  async dialogue(socket: net.Socket, host: RouteHost, address: string): Promise<void> {
    const where = `${host.name}[${address}]:${host.port}`;
    this.details.push(`connected to ${where}`);
    const d = new SmtpDialogue(socket, this.o.commandTimeoutMs);
    try {
      if (!this.expect2xx(await d.read('the greeting'), 'the greeting')) return;
      const ehlo = await d.command(`EHLO ${this.o.heloName}`);
      if (!this.expect2xx(ehlo, 'EHLO')) return;
      if (!parseEhlo(ehlo).startTls) {
        this.add('CRITICAL', `${where} offers no STARTTLS: copies are never sent in plaintext, so every one would hard bounce`);
        return;
      }
      if (!this.expect2xx(await d.command('STARTTLS'), 'STARTTLS')) return;
      const servername = net.isIP(host.name) === 0 ? host.name : undefined;
      let secure: tls.TLSSocket;
      try {
        secure = await d.startTls({
          ...(servername !== undefined ? { servername } : {}),
          minVersion: 'TLSv1.2',
          ca: this.o.tlsCa.length > 0 ? [...tls.rootCertificates, ...this.o.tlsCa.map((b) => b.toString('utf8'))] : undefined,
          // Verified below, so that an untrusted certificate is still shown with its names and chain.
          rejectUnauthorized: false,
        });
      } catch (err) {
        this.add('CRITICAL', `TLS handshake with ${where} failed (TLS 1.2 or newer required): ${describeError(err)}`);
        return;
      }
      const protocol = secure.getProtocol() ?? '?';
      const cipher = secure.getCipher().name;
      const cert = secure.getPeerCertificate(true);
      this.details.push(`TLS ${protocol} cipher ${cipher}`);
      this.details.push(`certificate for ${certNames(cert)}, valid until ${new Date(cert.valid_to).toISOString()}`);
      this.details.push('chain:', ...chainLines(cert));
      let certOk = true;
      if (!secure.authorized) {
        certOk = false;
        this.add('CRITICAL', `certificate of ${where} not trusted: ${trustProblem(String(secure.authorizationError))}`);
      }
      const nameError = tls.checkServerIdentity(host.name, cert);
      if (nameError !== undefined) {
        certOk = false;
        this.add('CRITICAL', `certificate not valid for ${host.name}: ${nameError.message}`);
      }
      const daysLeft = (Date.parse(cert.valid_to) - Date.now()) / 86_400_000;
      if (certOk && daysLeft < CERT_WARN_DAYS) this.add('WARNING', `certificate expires in ${Math.max(0, Math.floor(daysLeft))} day(s)`);
      const ehloTls = await d.command(`EHLO ${this.o.heloName}`);
      if (!this.expect2xx(ehloTls, 'EHLO after STARTTLS')) return;
      const size = parseEhlo(ehloTls).size;
      if (size !== undefined && size > 0 && size < this.o.maxMessageBytes) {
        this.add('WARNING', `the intake takes messages up to ${size} bytes (SIZE), less than max_message_size (${this.o.maxMessageBytes}): copies of bigger messages would be refused`);
      }
      if (!this.expect2xx(await d.command('MAIL FROM:<>'), 'MAIL FROM:<> (the null sender every copy uses)')) return;
      if (!this.expect2xx(await d.command(`RCPT TO:<${this.o.address}>`), `RCPT TO:<${this.o.address}>`)) return;
      let sent = '';
      if (this.o.send && certOk) {
        const data = await d.command('DATA');
        if (data.code !== 354) {
          this.expect2xx(data, 'DATA');
          return;
        }
        const journal = testJournal(this.o.address, this.o.heloName, new Date());
        const wire = Buffer.concat([dotStuff(journal, START_OF_DATA), endOfData(journal[journal.length - 1] ?? START_OF_DATA)]);
        const end = await d.send(wire, 'the test journal');
        if (!this.expect2xx(end, 'the test journal')) return;
        sent = `, test journal accepted (${replyText(end)})`;
      } else {
        await d.command('RSET');
      }
      this.summary = `${where} ${protocol} ${cipher}, certificate valid for ${host.name}, MAIL FROM:<> and RCPT TO accepted${sent}`;
      await d.command('QUIT').catch(() => undefined);
    } catch (err) {
      this.add('CRITICAL', `${where}: ${describeError(err)}`);
    } finally {
      this.transcript = d.transcript;
      d.close();
    }
  }
}

/** Run the whole check. Never throws: every failure is a finding. */
export async function checkIntake(o: CheckOptions): Promise<CheckReport> {
  const c = new Check(o);
  await c.run();
  const status = worst(c.findings);
  return { address: o.address, status, summary: c.summary, findings: c.findings, details: c.details, transcript: c.transcript };
}

/** Nagios style: the status line first, then the findings, the facts and the dialogue. Pure. */
export function formatCheckReport(r: CheckReport): string {
  const problems = r.findings.map((f) => f.text).join('; ');
  const first = `CHECK-INTAKE ${r.status} - ${r.address}: ${problems !== '' ? problems : r.summary}\n`;
  const lines = [
    ...r.findings.map((f) => `${f.level}: ${f.text}`),
    ...r.details,
    ...(r.transcript.length > 0 ? ['dialogue:', ...r.transcript.map((l) => `  ${l}`)] : []),
  ];
  return first + lines.map((l) => `${l}\n`).join('');
}

export function parseCheckArgs(argv: string[]): { address: string | undefined; dns: string[] | undefined; port: number | undefined; send: boolean; configPath: string | undefined; help: boolean } {
  const { values, positionals } = parseStrict(() => parseArgs({
    args: argv,
    strict: true,
    allowPositionals: true,
    options: {
      dns: { type: 'string', multiple: true },
      port: { type: 'string' },
      send: { type: 'boolean' },
      config: { type: 'string', short: 'c' },
      help: { type: 'boolean', short: 'h' },
    },
  }));
  if (positionals.length > 1) throw new Error(`expected at most one ADDRESS, got ${positionals.length}`);
  const address = positionals[0];
  if (address !== undefined && !/^[^@\s<>]+@[^@\s<>]+$/.test(address)) throw new Error(`ADDRESS: expected user@domain, got "${address}"`);
  let port: number | undefined;
  if (values.port !== undefined) {
    port = Number(values.port);
    if (!/^\d+$/.test(values.port) || port < 1 || port > 65535) throw new Error(`--port: expected 1-65535, got "${values.port}"`);
  }
  for (const s of values.dns ?? []) {
    const host = s.replace(/^\[(.*)\](:\d+)?$/, '$1').replace(/^([^:]+):\d+$/, '$1');
    if (net.isIP(host) === 0) throw new Error(`--dns: expected an IP address (optionally :PORT), got "${s}"`);
  }
  return { address, dns: values.dns, port, send: values.send === true, configPath: values.config, help: values.help === true };
}

/** The options from the configuration's [tdc] settings (relay, CA file, timeouts, HELO name). */
export function checkOptionsFrom(config: Config, args: ReturnType<typeof parseCheckArgs>): CheckOptions {
  return {
    address: args.address ?? config.tdc.intakeAddress,
    relay: config.tdc.relay,
    dnsServers: args.dns,
    mxPort: args.port,
    send: args.send,
    heloName: config.milter.hostname,
    // The bundle as the loader read it (the daemon uses the same text), not a second read of the file.
    tlsCa: config.tdc.tlsCa !== undefined ? [Buffer.from(config.tdc.tlsCa, 'utf8')] : [],
    connectTimeoutMs: config.tdc.connectTimeout,
    commandTimeoutMs: config.tdc.commandTimeout,
    maxMessageBytes: config.milter.maxMessageSize,
  };
}

/** `tdc-milter check-intake …`: `load` reads the configuration (an explicit --config, or the default choice). */
export async function checkIntakeCommand(
  argv: string[],
  load: (configPath: string | undefined) => { result: ConfigResult; name: string },
): Promise<{ exitCode: number; stdout: string; stderr: string }> {
  const unknown = (text: string): { exitCode: number; stdout: string; stderr: string } =>
    ({ exitCode: EXIT_CODES.UNKNOWN, stdout: `CHECK-INTAKE UNKNOWN - ${text}\n`, stderr: '' });
  let args: ReturnType<typeof parseCheckArgs>;
  try {
    args = parseCheckArgs(argv);
  } catch (err) {
    return { ...unknown(describeError(err)), stderr: CHECK_USAGE };
  }
  if (args.help) return { exitCode: 0, stdout: CHECK_USAGE, stderr: '' };
  const { result, name } = load(args.configPath);
  if (!result.ok) return unknown(`${name}: ${result.errors.join('; ')}`);
  let options: CheckOptions;
  try {
    options = checkOptionsFrom(result.config, args);
  } catch (err) {
    return unknown(`tls_ca_file: ${describeError(err)}`);
  }
  if (options.address === '') return unknown(`no intake address: give one, or set intake_address in ${name}`);
  const report = await checkIntake(options);
  return { exitCode: EXIT_CODES[report.status], stdout: formatCheckReport(report), stderr: '' };
}
