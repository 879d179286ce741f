/**
 * Logging: mail-log lines with the `TDC:` prefix, one event per line, to stdout (with journald's
 * `<N>` priority prefixes when stdout is journald), a log file (gateway timestamps, reopened on
 * demand) or syslog. Every message is made single-line here
 * (control bytes escaped), so nothing a sender controls can forge or split a log line.
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import { Writable } from 'node:stream';

export type LogLevel = 'debug' | 'info' | 'warning' | 'error';

/**
 * Per-line options. `prefix: false` writes the line without `TDC: `, for the gateway lines that
 * carry none in Cisco's own mail log (`DCID … TLS success …`, `Message finished MID … done`).
 */
export interface LineOptions {
  prefix?: boolean;
}

export interface Logger {
  debug(message: string, options?: LineOptions): void;
  info(message: string, options?: LineOptions): void;
  warn(message: string, options?: LineOptions): void;
  error(message: string, options?: LineOptions): void;
}

export const LOG_PREFIX = 'TDC: ';

const LEVEL_RANK: Record<LogLevel, number> = { error: 3, warning: 4, info: 6, debug: 7 };
const LEVEL_LABEL: Record<LogLevel, string> = { error: 'Error', warning: 'Warning', info: 'Info', debug: 'Debug' };

/** Escape control characters and cap the length so a value always stays inside one log line. */
export function oneLine(text: string, max = 2000): string {
  // C0, DEL, C1 (a terminal reads U+009B as CSI) and the Unicode line and paragraph separators.
  // eslint-disable-next-line no-control-regex
  let s = text.replace(/[\x00-\x1f\x7f-\x9f\u2028\u2029]/g, (c) => {
    if (c === '\r') return '\\r';
    if (c === '\n') return '\\n';
    if (c === '\t') return '\\t';
    const code = c.charCodeAt(0);
    return code > 0xff ? `\\u${code.toString(16)}` : `\\x${code.toString(16).padStart(2, '0')}`;
  });
  if (s.length > max) s = `${s.slice(0, max)}…(${s.length - max} more)`;
  return s;
}

export interface LoggerOptions {
  level?: LogLevel;
  format?: 'plain' | 'json';
  /** Where lines go: a stream (default process.stdout) or a file path. */
  stream?: Writable;
  file?: string;
  /** Send lines to syslog (facility mail) through this socket, e.g. /dev/log; wins over `file`. */
  syslogSocket?: string;
  /**
   * Lines to `stream` go to journald: `<N>` priority prefix, no timestamp of our own.
   * @default true when stdout is the stream and `$JOURNAL_STREAM` names it (see `stdoutIsJournal`)
   */
  journald?: boolean;
}

/**
 * Whether our stdout is journald's stream: systemd sets `JOURNAL_STREAM=DEV:INODE` of the stream it
 * connects, and a child whose stdout was redirected elsewhere inherits the variable but not the stream.
 */
export function stdoutIsJournal(env: NodeJS.ProcessEnv = process.env, fd = 1): boolean {
  const m = /^(\d+):(\d+)$/.exec(env['JOURNAL_STREAM'] ?? '');
  if (!m) return false;
  try {
    const st = fs.fstatSync(fd, { bigint: true });
    return st.dev === BigInt(m[1]!) && st.ino === BigInt(m[2]!);
  } catch {
    return false;
  }
}

const DAYS = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'];
const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

/**
 * The gateway's mail-log timestamp, local time: `Fri Feb 16 21:19:22 2024` (receiver-facts §3).
 * The gateway writes ctime(3) form, so a day below 10 is space-padded: `Tue Feb  6 …`.
 */
export function gatewayTimestamp(d: Date): string {
  const p = (n: number) => String(n).padStart(2, '0');
  return `${DAYS[d.getDay()]} ${MONTHS[d.getMonth()]} ${String(d.getDate()).padStart(2, ' ')} ` +
    `${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())} ${d.getFullYear()}`;
}

/**
 * An append-mode log file that can be reopened (SIGUSR1 after logrotate moved it away): lines go to
 * the file of that name at the time of the write's open, and a reopen never loses a line. Lines go
 * straight to the fs.WriteStream (it gathers the lines written while one write is out into one
 * writev), not through a Writable of our own.
 */
class ReopenableFile {
  #out: fs.WriteStream;
  constructor(readonly path: string) {
    this.#out = this.#open();
  }
  #open(): fs.WriteStream {
    const out = fs.createWriteStream(this.path, { flags: 'a' });
    out.on('error', (err) => process.stderr.write(`tdc-milter: log file ${this.path}: ${err.message}\n`));
    return out;
  }
  write(line: string): void {
    this.#out.write(line);
  }
  reopen(): void {
    const old = this.#out;
    this.#out = this.#open();
    old.end();
  }
  end(done: () => void): void {
    this.#out.end(done);
  }
}

/** syslog severities (RFC 5424) of our levels; facility mail is 2, so PRI = 16 + severity. */
const SYSLOG_PRI: Record<LogLevel, number> = { error: 16 + 3, warning: 16 + 4, info: 16 + 6, debug: 16 + 7 };

/**
 * Lines to syslog through util-linux logger(1): it speaks both datagram (/dev/log) and stream
 * sockets without a native addon. Each line carries its own `<PRI>` prefix. If logger dies, lines
 * go to stderr, after one line saying so: nothing is lost silently.
 */
function syslogStream(socket: string): Writable {
  const child = spawn('logger', ['--prio-prefix', '-t', 'tdc-milter', `--id=${process.pid}`, '-u', socket], {
    stdio: ['pipe', 'ignore', 'inherit'],
  });
  let alive = true;
  const fail = (why: string): void => {
    if (!alive) return;
    alive = false;
    process.stderr.write(`tdc-milter: syslog through ${socket} failed (${why}); logging to stderr\n`);
  };
  child.on('error', (err) => fail(err.message));
  child.on('exit', (code) => fail(`logger exited with ${code}`));
  child.stdin.on('error', (err) => fail(err.message));
  child.unref();
  return new Writable({
    write(chunk: Buffer, _enc, done) {
      if (alive) child.stdin.write(chunk, () => done());
      else {
        process.stderr.write(chunk.toString().replace(/^<\d+>/, ''));
        done();
      }
    },
    final(done) {
      child.stdin.end(() => done());
    },
  });
}

export interface ClosableLogger extends Logger {
  close(): Promise<void>;
  /** Reopen `file` (SIGUSR1, after logrotate moved it away); a no-op for other destinations. */
  reopen(): void;
}

/** How long a logged line may wait to be written with the lines after it, and how much may wait. */
const FLUSH_MS = 10;
const FLUSH_BYTES = 64 * 1024;

/**
 * `f(now)` of the current time, computed again only when the time has moved on by `resolution` ms: the
 * lines of one copy come within the same millisecond (the same second for the gateway's stamp).
 */
function stampCache(resolution: number, f: (d: Date) => string): () => string {
  let at = -1;
  let text = '';
  return () => {
    const now = Date.now();
    const slot = Math.floor(now / resolution);
    if (slot !== at) {
      at = slot;
      text = f(new Date(now));
    }
    return text;
  };
}

/**
 * The daemon's logger. On journald (stdout with `$JOURNAL_STREAM`) each line starts with its priority
 * (`<3>` error … `<7>` debug, systemd's SyslogLevelPrefix) and journald stamps the time; elsewhere on
 * stdout lines carry an ISO 8601 UTC time; a log file carries the gateway's timestamp. A line is
 * formatted here in one step and written straight to its stream: a copy costs about six lines, and a
 * general logging pipeline (per-line stream hops, format objects, a timer per line) cost the daemon
 * more than its SMTP client did. Lines below the level cost one comparison.
 */
export function createLogger(options: LoggerOptions = {}): ClosableLogger {
  const toStdout = !options.syslogSocket && !options.file;
  const journald = toStdout && (options.journald ?? (options.stream === undefined && stdoutIsJournal()));
  const file = !options.syslogSocket && options.file ? new ReopenableFile(options.file) : undefined;
  const stream: Writable | undefined = file ? undefined
    : options.syslogSocket ? syslogStream(options.syslogSocket) : options.stream ?? process.stdout;
  // Lines are gathered for up to FLUSH_MS (or FLUSH_BYTES) and go out as one write: a copy's six
  // lines come from three or four callbacks, and on journald's socket or into a log file each write
  // was a system call or a thread-pool job of its own. close() and reopen() flush first, so no line
  // is lost or lands in the wrong file; the time in a line is when it was logged, not written.
  let pending: string[] = [];
  let pendingBytes = 0;
  let timer: NodeJS.Timeout | undefined;
  const flush = (): void => {
    if (timer !== undefined) clearTimeout(timer);
    timer = undefined;
    if (pending.length === 0) return;
    const text = pending.length === 1 ? pending[0]! : pending.join('');
    pending = [];
    pendingBytes = 0;
    if (file) file.write(text);
    else stream!.write(text);
  };
  const out = (line: string): void => {
    pending.push(line);
    pendingBytes += line.length;
    if (pendingBytes >= FLUSH_BYTES) flush();
    else timer ??= setTimeout(flush, FLUSH_MS);
  };
  const max = LEVEL_RANK[options.level ?? 'info'];
  const isoNow = stampCache(1, (d) => d.toISOString());
  const gatewayNow = stampCache(1000, gatewayTimestamp);
  const format: (level: LogLevel, text: string) => string =
    options.syslogSocket ? (level, text) => `<${SYSLOG_PRI[level]}>${text}\n`
      : options.format === 'json'
        // JSON keeps its own ISO time field; on journald the priority prefix goes in front of the object.
        // Time and level never need escaping: only the message goes through JSON.stringify.
        ? (level, text) => `${journald ? `<${LEVEL_RANK[level]}>` : ''}{"time":"${isoNow()}","level":"${level}","message":${JSON.stringify(text)}}\n`
        : journald ? (level, text) => `<${LEVEL_RANK[level]}>${LEVEL_LABEL[level]}: ${text}\n`
          : file ? (level, text) => `${gatewayNow()} ${LEVEL_LABEL[level]}: ${text}\n`
            : (level, text) => `${isoNow()} ${LEVEL_LABEL[level]}: ${text}\n`;
  let closed = false;
  const log = (level: LogLevel) => (message: string, options?: LineOptions): void => {
    if (LEVEL_RANK[level] > max || closed) return;
    out(format(level, options?.prefix === false ? oneLine(message) : `${LOG_PREFIX}${oneLine(message)}`));
  };
  return {
    debug: log('debug'),
    info: log('info'),
    warn: log('warning'),
    error: log('error'),
    reopen: () => {
      flush();
      file?.reopen();
    },
    close: () =>
      new Promise<void>((resolve) => {
        flush();
        closed = true;
        // A log file is flushed to the disk before we say closed (the process exits next); stdout is
        // not ours to end.
        if (file) file.end(() => resolve());
        else if (stream !== process.stdout && stream !== process.stderr) stream!.end(() => resolve());
        else resolve();
        setTimeout(resolve, 1000).unref();
      }),
  };
}

export interface LogLine {
  level: LogLevel;
  message: string;
  /** False for a line written without the `TDC: ` prefix. */
  prefixed: boolean;
}

/** A logger that keeps its lines in memory, for tests (same escaping as the real one). */
export class MemoryLogger implements Logger {
  readonly lines: LogLine[] = [];
  #push(level: LogLevel, message: string, options?: LineOptions): void {
    this.lines.push({ level, message: oneLine(message), prefixed: options?.prefix !== false });
  }
  debug(message: string, options?: LineOptions): void { this.#push('debug', message, options); }
  info(message: string, options?: LineOptions): void { this.#push('info', message, options); }
  warn(message: string, options?: LineOptions): void { this.#push('warning', message, options); }
  error(message: string, options?: LineOptions): void { this.#push('error', message, options); }
  /** Lines as they would be written: with `TDC: ` unless written without. */
  texts(): string[] {
    return this.lines.map((l) => (l.prefixed ? `${LOG_PREFIX}${l.message}` : l.message));
  }
  /** Messages matching `pattern`. */
  matching(pattern: RegExp): string[] {
    return this.lines.map((l) => l.message).filter((m) => pattern.test(m));
  }
}
