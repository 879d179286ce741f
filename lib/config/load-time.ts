/**
 * The checks and reads milter.conf needs from the file system, done once when the file is loaded so
 * that `check-config` and the daemon (start and reload) accept exactly the same files: the CA bundle
 * is read and every certificate in it parsed; a unix socket's directory and group, and log_file's
 * directory, must exist. All file I/O of lib/config goes through the injectable `ConfigIo`.
 * Imports node:fs/crypto/path and util only.
 */
import { X509Certificate } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describeError } from '../util/errors';
import type { ListenAddress } from '../util/net-address';
import { findGroupId } from '../util/unix-group';

/** What loading needs from the file system (a fake in unit specs). */
export interface ConfigIo {
  /** The file's text; throws (ENOENT, EACCES, EISDIR…) when it cannot be read. */
  readFile(file: string): string;
  /** Whether `dir` exists and is a directory. */
  isDirectory(dir: string): boolean;
}

export const NODE_IO: ConfigIo = {
  readFile: (file) => fs.readFileSync(file, 'utf8'),
  isDirectory: (dir) => {
    try {
      return fs.statSync(dir).isDirectory();
    } catch {
      return false;
    }
  },
};

/** `file:line: key: …` without the file: the caller formats. */
export interface LoadProblem {
  line: number;
  key: string;
  message: string;
}

const PEM_CERT = /-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g;

/** Read `file` as a PEM CA bundle: its text, or the problem (unreadable, no certificate, a bad one). */
export function readCaBundle(file: string, io: ConfigIo): { ok: true; pem: string } | { ok: false; message: string } {
  const got = JSON.stringify(file);
  let text: string;
  try {
    text = io.readFile(file);
  } catch (err) {
    return { ok: false, message: `expected a readable PEM CA bundle, got ${got} (${describeError(err)})` };
  }
  const blocks = text.match(PEM_CERT) ?? [];
  if (blocks.length === 0) {
    return { ok: false, message: `expected a PEM CA bundle with at least one certificate, got ${got} (no BEGIN CERTIFICATE block)` };
  }
  for (const [i, block] of blocks.entries()) {
    try {
      new X509Certificate(block); // eslint-disable-line no-new -- parsed only to refuse a broken bundle now, not at the first TLS handshake
    } catch (err) {
      return { ok: false, message: `expected a PEM CA bundle, got ${got} (certificate ${i + 1} of ${blocks.length}: ${describeError(err)})` };
    }
  }
  return { ok: true, pem: text };
}

/** A unix listen socket's directory must exist: the daemon creates the socket, never the directory. */
export function checkListenDirectory(listen: ListenAddress, text: string, io: ConfigIo): string | undefined {
  if (listen.kind !== 'unix') return undefined;
  const dir = path.dirname(listen.path);
  if (io.isDirectory(dir)) return undefined;
  return `expected a unix socket in an existing directory, got ${JSON.stringify(text)} (no directory ${dir})`;
}

/**
 * `log_file`'s directory must exist: the daemon creates the file, never the directory, and a file it
 * cannot open costs every log line after one line on stderr.
 */
export function checkLogFileDirectory(file: string, io: ConfigIo): string | undefined {
  const dir = path.dirname(file);
  if (io.isDirectory(dir)) return undefined;
  return `expected a file in an existing directory, got ${JSON.stringify(file)} (no directory ${dir})`;
}

export const GROUP_FILE = '/etc/group';

/** A unix socket's socket_group must be a gid or a group of /etc/group (the milter server chowns to it). */
export function checkSocketGroup(listen: ListenAddress, group: string, io: ConfigIo): string | undefined {
  if (listen.kind !== 'unix' || /^\d+$/.test(group)) return undefined;
  let text: string;
  try {
    text = io.readFile(GROUP_FILE);
  } catch (err) {
    return `expected a group of ${GROUP_FILE} or a numeric gid, got ${JSON.stringify(group)} (cannot read ${GROUP_FILE}: ${describeError(err)})`;
  }
  return findGroupId(group, text) === undefined ? `expected a group of ${GROUP_FILE} or a numeric gid, got ${JSON.stringify(group)}` : undefined;
}
