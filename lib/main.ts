#!/usr/bin/env node
/**
 * The command line: `tdc-milter [run] [--config FILE]` starts the daemon; `check-config` and
 * `config` inspect a milter.conf. Signals: SIGHUP reloads the file, SIGTERM/SIGINT drain (drain_time) and exit 0.
 * Argument parsing and process I/O only; the work happens in app.ts.
 */
import * as fs from 'node:fs';
import { DEFAULT_CONFIG_TEXT, describeEffective, loadConfigFile, parseConfigText, type ConfigResult } from './config';
import { TdcApp } from './app';
import { statusCommand, tophostsCommand, trackCommand } from './status';
import { createLogger } from './util/logger';
import { describeError } from './util/errors';

const SYSTEM_CONFIG = '/etc/tdc-milter/milter.conf';

/** 30000 → '30s', 1500 → '1.5s'. */
function secondsText(ms: number): string {
  return `${Number((ms / 1000).toFixed(3))}s`;
}

const USAGE = `usage: tdc-milter [command] [--config FILE]

commands:
  run            start the milter daemon (default)
  check-config   check a milter.conf; exit 0 when valid, else print every problem and exit 1
  config         print the effective settings for this machine and the layer each came from
  status [--json]
                 the.tdc.queue and per intake domain: active recipients, connections out,
                 delivered, soft/hard bounced, dropped, queue bytes (asks the running daemon)
  tophosts [--json]
                 the same numbers in the gateway's tophosts layout (hosts down marked '*')
  track ID [--json]
                 the history of a journal copy, by copy id, MID, MTA queue id or Message-ID
  help           this text

--config FILE    the configuration file; default: $TDC_MILTER_CONFIG, else ${SYSTEM_CONFIG}
                 if it exists, else the embedded default (milter on inet:127.0.0.1:8894, journaling off)
`;

interface Args {
  command: string;
  configPath: string | undefined;
  operands: string[];
  json: boolean;
}

function parseArgs(argv: string[]): Args {
  let command = 'run';
  let configPath: string | undefined;
  let sawCommand = false;
  let json = false;
  const operands: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--config' || a === '-c') {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${a} needs a file name`);
      configPath = v;
    } else if (a.startsWith('--config=')) {
      configPath = a.slice('--config='.length);
    } else if (a === '--help' || a === '-h') {
      command = 'help';
      sawCommand = true;
    } else if (a === '--json') {
      json = true;
    } else if (!a.startsWith('-') && !sawCommand) {
      command = a;
      sawCommand = true;
    } else if (!a.startsWith('-')) {
      operands.push(a);
    } else {
      throw new Error(`unknown argument ${a}`);
    }
  }
  return { command, configPath, operands, json };
}

/** Which file to read: explicit, environment, system path, or none (embedded default). */
function chooseConfigPath(explicit: string | undefined): string | undefined {
  if (explicit !== undefined) return explicit;
  const env = process.env['TDC_MILTER_CONFIG'];
  if (env) return env;
  return fs.existsSync(SYSTEM_CONFIG) ? SYSTEM_CONFIG : undefined;
}

function loadConfig(path: string | undefined): ConfigResult {
  return path === undefined ? parseConfigText(DEFAULT_CONFIG_TEXT, '(embedded default)') : loadConfigFile(path);
}

async function run(path: string | undefined): Promise<number> {
  const first = loadConfig(path);
  if (!first.ok) {
    for (const e of first.errors) process.stderr.write(`${e}\n`);
    process.stderr.write(`tdc-milter: not started: ${first.errors.length} problem(s) in the configuration\n`);
    return 1;
  }
  const m = first.config.milter;
  const logger = createLogger({ level: m.logLevel, format: m.logFormat, file: m.logFile, syslogSocket: m.syslogSocket });
  // Signal handlers go in before start-up: Node's default action for SIGHUP and SIGTERM is to
  // exit, so a reload or stop that arrives while we start must not kill the daemon.
  let app: TdcApp | undefined;
  let reloadPending = false;
  let stopRequested: string | undefined;
  let stopNow: ((signal: string) => void) | undefined;
  const reload = (target: TdcApp) => {
    const next = loadConfig(path);
    if (!next.ok) {
      logger.error(`reload refused, keeping the old settings: ${next.errors.join('; ')}`);
      return;
    }
    target.reload(next.config);
  };
  process.on('SIGHUP', () => {
    if (app === undefined) {
      logger.info('SIGHUP during start-up: reloading once started');
      reloadPending = true;
    } else {
      reload(app);
    }
  });
  const onStop = (signal: string) => {
    if (stopNow) stopNow(signal);
    else stopRequested ??= signal;
  };
  process.on('SIGTERM', () => onStop('SIGTERM'));
  process.on('SIGINT', () => onStop('SIGINT'));
  logger.info(`starting tdc-milter with ${path ?? 'the embedded default configuration'}`);

  try {
    app = await TdcApp.start(first.config, { logger });
  } catch (err) {
    logger.error(`not started: ${describeError(err)}`);
    await logger.close();
    return 1;
  }
  const running = app;
  if (reloadPending) reload(running);

  return new Promise<number>((resolve) => {
    let stopping = false;
    stopNow = (signal: string) => {
      if (stopping) return;
      stopping = true;
      // The drain time of the settings in effect now (a SIGHUP may have changed it).
      const drainMs = running.config.milter.drainTime;
      const before = running.forwarder.counters();
      const started = Date.now();
      logger.info(
        `${signal} received: no new messages; ${before.activeRecipients} journal copies queued, ` +
          `draining for up to ${secondsText(drainMs)} (drain_time)`,
      );
      running
        .stop(drainMs)
        .catch((err: unknown) => logger.error(`shutdown: ${describeError(err)}`))
        .finally(() => {
          const after = running.forwarder.counters();
          logger.info(
            `drain finished after ${secondsText(Date.now() - started)}: ${after.delivered - before.delivered} delivered, ` +
              `${after.hardBounced - before.hardBounced} hard bounced, ${after.dropped - before.dropped} dropped, ` +
              `${after.activeRecipients} left in the queue`,
          );
          logger.info('stopped');
          void logger.close().then(() => resolve(0));
        });
    };
    if (stopRequested !== undefined) stopNow(stopRequested);
  });
}

async function main(argv: string[]): Promise<number> {
  let args: Args;
  try {
    args = parseArgs(argv);
  } catch (err) {
    process.stderr.write(`tdc-milter: ${describeError(err)}\n${USAGE}`);
    return 2;
  }
  const path = chooseConfigPath(args.configPath);
  switch (args.command) {
    case 'run':
      return run(path);
    case 'check-config': {
      const r = loadConfig(path);
      if (r.ok) {
        process.stdout.write(`${path ?? '(embedded default)'}: configuration OK\n`);
        return 0;
      }
      for (const e of r.errors) process.stdout.write(`${e}\n`);
      return 1;
    }
    case 'config': {
      const r = loadConfig(path);
      if (!r.ok) {
        for (const e of r.errors) process.stderr.write(`${e}\n`);
        return 1;
      }
      process.stdout.write(describeEffective(r.config));
      return 0;
    }
    case 'status':
    case 'tophosts':
    case 'track': {
      const r = loadConfig(path);
      if (!r.ok) {
        for (const e of r.errors) process.stderr.write(`${e}\n`);
        return 1;
      }
      const listen = r.config.milter.statusListen;
      const out =
        args.command === 'status'
          ? await statusCommand(listen, { json: args.json })
          : args.command === 'tophosts'
            ? await tophostsCommand(listen, { json: args.json })
            : await trackCommand(listen, args.operands[0], { json: args.json });
      process.stdout.write(out.stdout);
      process.stderr.write(out.stderr);
      return out.exitCode;
    }
    case 'help':
      process.stdout.write(USAGE);
      return 0;
    default:
      process.stderr.write(`tdc-milter: unknown command ${args.command}\n${USAGE}`);
      return 2;
  }
}

// A log destination that goes away (the reader of our stdout/stderr died) must not wedge the
// daemon: EPIPE on our own output would otherwise feed the handler below, which writes to stderr.
for (const out of [process.stdout, process.stderr]) out.on('error', () => {});

// Last line of defence: an unexpected error is logged, and the daemon keeps serving mail.
process.on('uncaughtException', (err) => {
  process.stderr.write(`tdc-milter: uncaught exception (continuing): ${err.stack ?? err.message}\n`);
});
process.on('unhandledRejection', (err) => {
  process.stderr.write(`tdc-milter: unhandled rejection (continuing): ${describeError(err)}\n`);
});

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`tdc-milter: ${describeError(err)}\n`);
    process.exit(1);
  },
);
