/**
 * Logging: mail-log lines with the `TDC:` prefix, one event per line. This is the only module
 * that imports winston. Every message is made single-line here (CR, LF, NUL and other control
 * bytes escaped), so nothing a sender controls can forge or split a log line.
 */
import * as winston from 'winston';
import { spawn } from 'node:child_process';
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
  // eslint-disable-next-line no-control-regex
  let s = text.replace(/[\x00-\x1f\x7f]/g, (c) => {
    if (c === '\r') return '\\r';
    if (c === '\n') return '\\n';
    if (c === '\t') return '\\t';
    return `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`;
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
}

function prefixOf(info: winston.Logform.TransformableInfo): string {
  return info['bare'] === true ? '' : LOG_PREFIX;
}

/** The daemon's logger on winston. Plain lines suit journald with `SyslogFacility=mail`. */
export function createLogger(options: LoggerOptions = {}): ClosableLogger {
  const plain = winston.format.printf((info) => {
    const level = info.level as LogLevel;
    return `${String(info.timestamp)} ${LEVEL_LABEL[level] ?? level}: ${prefixOf(info)}${String(info.message)}`;
  });
  const json = winston.format.printf((info) =>
    JSON.stringify({ time: info.timestamp, level: info.level, message: `${prefixOf(info)}${String(info.message)}` }),
  );
  // syslog stamps its own time and host; the line is `<PRI>TDC: message`.
  const syslogLine = winston.format.printf(
    (info) => `<${SYSLOG_PRI[info.level as LogLevel] ?? 22}>${prefixOf(info)}${String(info.message)}`,
  );
  const transport = options.syslogSocket
    ? new winston.transports.Stream({ stream: syslogStream(options.syslogSocket) })
    : options.file
      ? new winston.transports.File({ filename: options.file })
      : new winston.transports.Stream({ stream: options.stream ?? process.stdout });
  const lineFormat = options.syslogSocket ? syslogLine : options.format === 'json' ? json : plain;
  const w = winston.createLogger({
    levels: LEVEL_RANK,
    level: options.level ?? 'info',
    format: winston.format.combine(winston.format.timestamp(), lineFormat),
    transports: [transport],
  });
  const log = (level: LogLevel) => (message: string, options?: LineOptions) => {
    if (options?.prefix === false) w.log({ level, message: oneLine(message), bare: true });
    else w.log(level, oneLine(message));
  };
  return {
    debug: log('debug'),
    info: log('info'),
    warn: log('warning'),
    error: log('error'),
    close: () =>
      new Promise<void>((resolve) => {
        w.on('finish', () => resolve());
        w.end();
        setTimeout(resolve, 200).unref();
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

/** A logger that drops everything. */
export const silentLogger: Logger = { debug() {}, info() {}, warn() {}, error() {} };
