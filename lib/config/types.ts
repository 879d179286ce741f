/**
 * The Config shape handed to the rest of the daemon (deep-frozen after loading) and the load result.
 * Types only; imports only the address and network types of util and the pattern and rule types of ./values, ./header-rule.
 */
import type { ListenAddress, RelaySpec } from '../util/net-address';
import type { Network } from '../util/ip-network';
import type { AddressPattern } from './values';
import type { HeaderRule } from './header-rule';

export type LogLevelName = 'debug' | 'info' | 'warning' | 'error';

export interface MilterConfig {
  /** Parsed from any form the milter accepts (Postfix or Sendmail style); `config` shows the Postfix form. */
  listen: ListenAddress;
  socketMode: number;
  socketGroup?: string;
  hostname: string;
  group?: string;
  /** 'no' = off. */
  statusListen: string;
  /** 'no' = off. The metrics listener: /metrics, /healthz, /readyz on any address. */
  metricsListen: string;
  /** Networks allowed on metricsListen, parsed (each keeps its text for logs and `config`). */
  metricsAllow: Network[];
  /** ms every delivery attempt must fail before /readyz says 503. */
  readyFailingTime: number;
  logLevel: LogLevelName;
  logFormat: 'plain' | 'json';
  logFile?: string;
  syslogSocket?: string;
  /** Bytes. */
  maxMessageSize: number;
  /** ms that queued copies get on SIGTERM before the rest are dropped. */
  drainTime: number;
}

/** The [tdc] settings effective for THIS machine after the group and machine layers. Times in ms. */
export interface TdcConfig {
  enabled: boolean;
  intakeAddress: string;
  /** Parsed at load time; unset = MX of the intake domain. */
  relay?: RelaySpec;
  tlsCaFile?: string;
  /** The PEM text of tls_ca_file, read when the file was loaded (a reload with an unreadable CA file is refused). */
  tlsCa?: string;
  maxQueueAge: number;
  retryDelay: number;
  remoteIpHeader: string;
  queueMaxMessages: number;
  queueMaxBytes: number;
  minConnections: number;
  maxConnections: number;
  messagesPerConnection: number;
  connectTimeout: number;
  commandTimeout: number;
}

export interface DirectionConfig {
  outgoingDaemonNames: string[];
  authenticatedIsOutgoing: boolean;
  /** Client networks, parsed and ready to match (each keeps its text for the log line and `config`). */
  internalNetworks: Network[];
}

export type PolicyTdc = 'global' | 'custom' | 'no';

export interface Policy {
  name: string;
  /** Parsed address patterns (lower-case); empty = any recipient. */
  recipients: AddressPattern[];
  /** Parsed address patterns (lower-case); empty = any sender. */
  senders: AddressPattern[];
  tdc: PolicyTdc;
  /** Set exactly when tdc = custom. */
  intakeAddress?: string;
  /** `skip_if_header` rules in file order (set only when there are some): mail with a matching header is not journaled for this policy. */
  skipIfHeader?: HeaderRule[];
}

export interface Config {
  milter: MilterConfig;
  tdc: TdcConfig;
  direction: DirectionConfig;
  /** File order, DEFAULT last (added as `tdc = global` when the file has none). */
  policies: Policy[];
  /**
   * Where each setting came from: 'tdc.enabled' → 'machine gw3.example.org (milter.conf:40)',
   * 'milter.listen' → 'milter (milter.conf:2)', 'default', …; 'policy NAME' → 'milter.conf:30' or 'implicit'.
   */
  sources: Record<string, string>;
}

/** Errors read `file:line: key: expected …, got …`, sorted by line. */
export type ConfigResult =
  | { ok: true; config: Config }
  /** `unreadable`: the file itself could not be read (check-config exits 2, not 1). */
  | { ok: false; errors: string[]; unreadable?: boolean };
