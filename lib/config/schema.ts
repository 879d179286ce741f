/**
 * The milter.conf schema: every key with its type, default, bounds and a one-line doc. Parsing,
 * defaults, the milter.conf.example check and `describeEffective` all derive from this table.
 * Lists and the relay are parsed into what the runtime uses (Network[], AddressPattern[], RelaySpec), and back.
 * Imports only ./values, ./header-rule and util's address parsers (pure).
 */
import {
  formatAddressPattern, parseAbsolutePath, parseAddressPattern, parseBool, parseDuration, parseEmailAddress, parseHeaderName,
  parseHostname, parseInteger, parseListen, parseName, parseNetwork, parseOctal, parseRelay, parseSize, parseStatusListen, parseMetricsListen,
  splitList, type AddressPattern, type Network, type Parsed,
} from './values';
import { parseHeaderRule } from './header-rule';
import { formatListenAddress, formatRelay, type ListenAddress, type RelaySpec } from '../util/net-address';
import { formatNetworks } from '../util/ip-network';

export type SectionKind = 'milter' | 'tdc' | 'direction' | 'policy';

export type ValueKind =
  | 'listen' | 'octal' | 'unix-group' | 'hostname' | 'name' | 'status-listen' | 'metrics-listen' | 'enum' | 'path' | 'size'
  | 'duration' | 'int' | 'bool' | 'email' | 'relay' | 'header-name' | 'word-list' | 'cidr-list' | 'pattern-list'
  | 'header-rule-list';

export interface KeySpec {
  section: SectionKind;
  /** The key as written in the file. */
  key: string;
  /** The property of the section object in Config. */
  field: string;
  kind: ValueKind;
  /** The default as file text ('' = empty). */
  default: string;
  /** Shown instead of the default when it is computed at load time. */
  defaultNote?: string;
  /** Empty value means: 'unset' → undefined, 'empty' → '' or [], 'forbidden' → an error. */
  empty: 'unset' | 'empty' | 'forbidden';
  min?: number;
  max?: number;
  values?: readonly string[];
  /** The key may be given on several lines of a section; each line adds to the list. */
  repeatable?: boolean;
  doc: string;
}

const KiB = 1024;
const MiB = 1024 * KiB;
const GiB = 1024 * MiB;
const S = 1000;

export const SCHEMA: readonly KeySpec[] = [
  // [milter]
  { section: 'milter', key: 'listen', field: 'listen', kind: 'listen', default: 'inet:127.0.0.1:8894', empty: 'forbidden',
    doc: 'where the MTA connects: inet:IP:PORT, inet6:[ADDR]:PORT, unix:/path, or Sendmail style inet:PORT@IP, inet6:PORT@ADDR, local:/path' },
  { section: 'milter', key: 'socket_mode', field: 'socketMode', kind: 'octal', default: '0660', empty: 'forbidden', min: 0, max: 0o777,
    doc: 'permissions of a unix socket (octal)' },
  { section: 'milter', key: 'socket_group', field: 'socketGroup', kind: 'unix-group', default: '', empty: 'unset',
    doc: 'group (name in /etc/group, or gid) of a unix socket, e.g. postfix; empty: the daemon\'s group' },
  { section: 'milter', key: 'hostname', field: 'hostname', kind: 'hostname', default: '', defaultNote: 'the system host name', empty: 'unset',
    doc: 'this machine\'s name: journal From/Message-ID, EHLO name, [machine NAME] matching' },
  { section: 'milter', key: 'group', field: 'group', kind: 'name', default: '', empty: 'unset',
    doc: 'this machine\'s group: the [group NAME] section whose settings apply on top of [tdc]' },
  { section: 'milter', key: 'status_listen', field: 'statusListen', kind: 'status-listen', default: '127.0.0.1:8895', empty: 'forbidden',
    doc: 'status endpoint (status page, /status, /track, /metrics, /healthz, /readyz), loopback only: 127.0.0.1:PORT or [::1]:PORT, or no' },
  { section: 'milter', key: 'metrics_listen', field: 'metricsListen', kind: 'metrics-listen', default: 'no', empty: 'forbidden',
    doc: 'a second listener with only /metrics, /healthz and /readyz, on any address (e.g. 0.0.0.0:9895), or no' },
  { section: 'milter', key: 'metrics_allow', field: 'metricsAllow', kind: 'cidr-list', default: '127.0.0.0/8, ::1', empty: 'empty',
    doc: 'networks that may use metrics_listen; everyone else gets 403' },
  { section: 'milter', key: 'ready_failing_time', field: 'readyFailingTime', kind: 'duration', default: '5m', empty: 'forbidden', min: S, max: 3600 * S,
    doc: '/readyz answers 503 once every delivery attempt has failed for this long; 1s..1h' },
  { section: 'milter', key: 'log_level', field: 'logLevel', kind: 'enum', values: ['debug', 'info', 'warning', 'error'], default: 'info', empty: 'forbidden',
    doc: 'debug, info, warning or error' },
  { section: 'milter', key: 'log_format', field: 'logFormat', kind: 'enum', values: ['plain', 'json'], default: 'plain', empty: 'forbidden',
    doc: 'plain or json lines' },
  { section: 'milter', key: 'log_file', field: 'logFile', kind: 'path', default: '', empty: 'unset',
    doc: 'log to this file (its directory must exist); empty: stdout (journald/syslog)' },
  { section: 'milter', key: 'syslog_socket', field: 'syslogSocket', kind: 'path', default: '', empty: 'unset',
    doc: 'log to syslog, facility mail, through this socket (e.g. /dev/log) instead of stdout or log_file; empty: off' },
  { section: 'milter', key: 'max_message_size', field: 'maxMessageSize', kind: 'size', default: '50MiB', empty: 'forbidden', min: KiB, max: GiB,
    doc: 'bigger messages are not journaled (logged instead)' },
  { section: 'milter', key: 'drain_time', field: 'drainTime', kind: 'duration', default: '30s', empty: 'forbidden', min: 0, max: 600 * S,
    doc: 'on SIGTERM, time open milter connections are still served and queued copies get to reach the intake; then copies never attempted are dropped, the rest hard bounced, and the daemon exits' },
  // [tdc] (layered: [group NAME] and [machine NAME] may override these)
  { section: 'tdc', key: 'enabled', field: 'enabled', kind: 'bool', default: 'yes', empty: 'forbidden',
    doc: 'journal incoming mail; when left unset, journaling is off while no intake address is configured (neither intake_address nor a tdc = custom policy)' },
  { section: 'tdc', key: 'intake_address', field: 'intakeAddress', kind: 'email', default: '', empty: 'empty',
    doc: 'the global (default) message intake address; policies with tdc = global use it' },
  { section: 'tdc', key: 'relay', field: 'relay', kind: 'relay', default: '', empty: 'unset',
    doc: 'send copies via host, host:port or [ip]:port; empty: MX of the intake domain' },
  { section: 'tdc', key: 'tls_ca_file', field: 'tlsCaFile', kind: 'path', default: '', empty: 'unset',
    doc: 'extra CA bundle (PEM) trusted for the intake\'s certificate, besides the system CAs' },
  { section: 'tdc', key: 'max_queue_age', field: 'maxQueueAge', kind: 'duration', default: '120s', empty: 'forbidden', min: S, max: 3600 * S,
    doc: 'a copy not delivered within this time leaves the queue: hard bounced after an attempt, dropped if never attempted' },
  { section: 'tdc', key: 'retry_delay', field: 'retryDelay', kind: 'duration', default: '10s', empty: 'forbidden', min: 0, max: 600 * S,
    doc: 'wait before the single retry of a soft-bounced copy (less than max_queue_age)' },
  { section: 'tdc', key: 'remote_ip_header', field: 'remoteIpHeader', kind: 'header-name', default: 'X-IronPort-RemoteIP', empty: 'forbidden',
    doc: 'header carrying the client IP, prepended to the journaled original' },
  { section: 'tdc', key: 'queue_max_messages', field: 'queueMaxMessages', kind: 'int', default: '1000', empty: 'forbidden', min: 1, max: 1_000_000,
    doc: 'copies queued at most; more are dropped and logged' },
  { section: 'tdc', key: 'queue_max_bytes', field: 'queueMaxBytes', kind: 'size', default: '100MiB', empty: 'forbidden', min: KiB, max: 16 * GiB,
    doc: 'bytes of copies queued at most; more are dropped and logged' },
  { section: 'tdc', key: 'min_connections', field: 'minConnections', kind: 'int', default: '3', empty: 'forbidden', min: 1, max: 100,
    doc: 'connections opened to an intake as soon as it has queued copies (one more per 10 queued copies beyond that, up to max_connections; none once the queue drains)' },
  { section: 'tdc', key: 'max_connections', field: 'maxConnections', kind: 'int', default: '10', empty: 'forbidden', min: 1, max: 100,
    doc: 'connections out at most, all intakes together (the.tdc.queue\'s limit)' },
  { section: 'tdc', key: 'messages_per_connection', field: 'messagesPerConnection', kind: 'int', default: '100', empty: 'forbidden', min: 1, max: 1000,
    doc: 'copies sent over one connection before it is replaced (not how many connections there are)' },
  { section: 'tdc', key: 'connect_timeout', field: 'connectTimeout', kind: 'duration', default: '10s', empty: 'forbidden', min: 100, max: 300 * S,
    doc: 'time to connect and get the greeting' },
  { section: 'tdc', key: 'command_timeout', field: 'commandTimeout', kind: 'duration', default: '30s', empty: 'forbidden', min: 100, max: 600 * S,
    doc: 'time to wait for each SMTP reply' },
  // [direction]
  { section: 'direction', key: 'outgoing_daemon_names', field: 'outgoingDaemonNames', kind: 'word-list', default: 'ORIGINATING', empty: 'empty',
    doc: 'Postfix milter_macro_daemon_name values ({daemon_name}) of outgoing listeners, case-insensitive' },
  { section: 'direction', key: 'authenticated_is_outgoing', field: 'authenticatedIsOutgoing', kind: 'bool', default: 'yes', empty: 'forbidden',
    doc: 'mail from SMTP-authenticated clients ({auth_authen}) is outgoing' },
  { section: 'direction', key: 'internal_networks', field: 'internalNetworks', kind: 'cidr-list', default: '', empty: 'empty',
    doc: 'client networks (IPv4/IPv6 CIDR) whose mail is not incoming' },
  // [policy NAME]
  { section: 'policy', key: 'recipients', field: 'recipients', kind: 'pattern-list', default: '', empty: 'empty',
    doc: 'recipient patterns: user@domain, @domain, @.domain (subdomains), user@; empty: any recipient' },
  { section: 'policy', key: 'senders', field: 'senders', kind: 'pattern-list', default: '', empty: 'empty',
    doc: 'the envelope sender must match one of these too; empty: any sender' },
  { section: 'policy', key: 'tdc', field: 'tdc', kind: 'enum', values: ['global', 'custom', 'no'], default: 'global', empty: 'forbidden',
    doc: 'global: [tdc] intake_address; custom: this policy\'s intake_address; no: not journaled' },
  { section: 'policy', key: 'intake_address', field: 'intakeAddress', kind: 'email', default: '', empty: 'unset',
    doc: 'the intake address of a tdc = custom policy' },
  { section: 'policy', key: 'skip_if_header', field: 'skipIfHeader', kind: 'header-rule-list', default: '', empty: 'empty', repeatable: true,
    doc: 'HEADER: REGEX (case-insensitive), one rule per line, repeatable: mail with a matching header is not journaled for this policy' },
];

export const SECTION_KINDS: readonly SectionKind[] = ['milter', 'tdc', 'direction', 'policy'];

export function keysOf(section: SectionKind): readonly KeySpec[] {
  return SCHEMA.filter((k) => k.section === section);
}

export function findKey(section: SectionKind, key: string): KeySpec | undefined {
  return SCHEMA.find((k) => k.section === section && k.key === key);
}

function parseUnixGroup(text: string): Parsed<string> {
  return /^(?:\d+|[A-Za-z_][A-Za-z0-9_.-]{0,31}\$?)$/.test(text)
    ? { ok: true, value: text }
    : { ok: false, expected: 'a group name or numeric gid' };
}

/** Each item parsed with `item`; every bad item is reported at once. */
function parseList<T>(text: string, item: (s: string) => Parsed<T>, noun: string): Parsed<T[]> {
  const out: T[] = [];
  const badItems: string[] = [];
  let why = '';
  for (const s of splitList(text)) {
    const r = item(s);
    if (r.ok) out.push(r.value);
    else {
      badItems.push(JSON.stringify(s));
      if (why === '' && /host bits/.test(r.expected)) why = ' (host bits zero)';
    }
  }
  if (badItems.length > 0) return { ok: false, expected: `${noun}${why}, separated by commas`, got: badItems.join(', ') };
  return { ok: true, value: out };
}

function describeBounds(spec: KeySpec): string {
  const f = (n: number) => formatScalar(spec, n);
  if (spec.min !== undefined && spec.max !== undefined) return ` from ${f(spec.min)} to ${f(spec.max)}`;
  if (spec.min !== undefined) return ` of at least ${f(spec.min)}`;
  return '';
}

function parseScalar(spec: KeySpec, text: string): Parsed<unknown> {
  switch (spec.kind) {
    case 'listen': return parseListen(text);
    case 'octal': return parseOctal(text);
    case 'unix-group': return parseUnixGroup(text);
    case 'hostname': return parseHostname(text);
    case 'name': return parseName(text);
    case 'status-listen': return parseStatusListen(text);
    case 'metrics-listen': return parseMetricsListen(text);
    case 'enum': return spec.values!.includes(text) ? { ok: true, value: text } : { ok: false, expected: `one of ${spec.values!.join(', ')}` };
    case 'path': return parseAbsolutePath(text);
    case 'size': return parseSize(text);
    case 'duration': return parseDuration(text);
    case 'int': return parseInteger(text);
    case 'bool': return parseBool(text);
    case 'email': return parseEmailAddress(text);
    case 'relay': return parseRelay(text);
    case 'header-name': return parseHeaderName(text);
    case 'word-list':
      return parseList(text, (s) => (/^[\x21-\x7e]+$/.test(s) ? { ok: true, value: s } : { ok: false, expected: 'a name' }),
        'names (printable ASCII)');
    case 'cidr-list':
      return parseList(text, parseNetwork, 'networks such as 10.0.0.0/8 or 2001:db8::/32');
    case 'pattern-list':
      return parseList(text, parseAddressPattern, 'address patterns (user@domain, @domain, @.domain or user@)');
    case 'header-rule-list': {
      // One rule per line: a regular expression may itself contain commas.
      const r = parseHeaderRule(text);
      return r.ok ? { ok: true, value: [r.value] } : r;
    }
  }
}

/** Parse one value of `spec` (already trimmed, comment removed): type, bounds and the empty rule. */
export function parseValue(spec: KeySpec, text: string): Parsed<unknown> {
  if (text === '') {
    if (spec.empty === 'unset') return { ok: true, value: undefined };
    if (spec.empty === 'empty') return { ok: true, value: spec.kind.endsWith('-list') ? [] : '' };
  }
  const r = parseScalar(spec, text);
  const bounded = spec.min !== undefined || spec.max !== undefined;
  const what = (e: string) => (bounded ? `${e}${describeBounds(spec)}` : e);
  if (!r.ok) return { ...r, expected: what(r.expected) };
  if (bounded && typeof r.value === 'number') {
    if ((spec.min !== undefined && r.value < spec.min) || (spec.max !== undefined && r.value > spec.max)) {
      return { ok: false, expected: what(kindNoun(spec)) };
    }
  }
  return r;
}

function kindNoun(spec: KeySpec): string {
  switch (spec.kind) {
    case 'duration': return 'a duration';
    case 'size': return 'a size';
    case 'octal': return 'a mode';
    default: return 'a number';
  }
}

/** The value of the default text (undefined for unset/computed defaults). */
export function defaultValue(spec: KeySpec): unknown {
  const r = parseValue(spec, spec.default);
  if (!r.ok) throw new Error(`schema default of ${spec.key} is invalid: ${r.expected}`);
  return r.value;
}

const SIZE_OUT: [string, number][] = [['GiB', GiB], ['MiB', MiB], ['KiB', KiB]];

function formatScalar(spec: KeySpec, v: number): string {
  if (spec.kind === 'duration') {
    // Seconds below 5 minutes (120s reads better than 2m), then the largest exact unit.
    if (v === 0) return '0s';
    if (v % 1000 !== 0) return `${v}ms`;
    if (v < 300_000 || v % 60_000 !== 0) return `${v / 1000}s`;
    if (v % 3_600_000 !== 0) return `${v / 60_000}m`;
    return `${v / 3_600_000}h`;
  }
  if (spec.kind === 'size') {
    const u = SIZE_OUT.find(([, n]) => v % n === 0);
    return u ? `${v / u[1]}${u[0]}` : `${v}B`;
  }
  if (spec.kind === 'octal') return v === 0 ? '0' : `0${v.toString(8)}`;
  return String(v);
}

/** A Config value back as file text (durations/sizes in the largest exact unit). */
export function formatValue(spec: KeySpec, value: unknown): string {
  if (value === undefined) return '';
  if (spec.kind === 'header-rule-list') return (value as { header: string; pattern: string }[]).map((r) => `${r.header}: ${r.pattern}`).join('\n');
  if (spec.kind === 'listen') return formatListenAddress(value as ListenAddress);
  if (spec.kind === 'relay') return formatRelay(value as RelaySpec);
  if (spec.kind === 'cidr-list') return formatNetworks(value as readonly Network[]);
  if (spec.kind === 'pattern-list') return (value as readonly AddressPattern[]).map(formatAddressPattern).join(', ');
  if (Array.isArray(value)) return value.join(', ');
  if (typeof value === 'boolean') return value ? 'yes' : 'no';
  if (typeof value === 'number') return formatScalar(spec, value);
  return String(value);
}
