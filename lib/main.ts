#!/usr/bin/env node
/**
 * The command line: `tdc-milter [run] [--config FILE]` starts the daemon; `check-config` and
 * `config` inspect a milter.conf; `--help`, `--version`. The COMMANDS table drives parsing, help and dispatch
 * (lib/cli/args). Signals: SIGHUP reloads the file, SIGUSR1 reopens log_file, SIGTERM/SIGINT drain
 * (drain_time) and exit 0. Process I/O only; the work happens in app.ts.
 */
import * as fs from 'node:fs';
import { DEFAULT_CONFIG_TEXT, describeEffective, loadConfigFile, parseConfigText, type ConfigResult } from './config';
import { TdcApp } from './app';
import { statusCommand, tophostsCommand, trackCommand } from './status';
import { createLogger } from './util/logger';
import { describeError } from './util/errors';
import { commandWord, formatUsage, parseCommandLine, type CommandSpec } from './cli/args';
import { explainCommand } from './cli/explain';
import { checkIntakeCommand } from './cli/check-intake';
import { listenFdsFromEnv, notifySystemd, unsetListenEnv } from './util/systemd';
import { VERSION } from './version';

const SYSTEM_CONFIG = '/etc/tdc-milter/milter.conf';

/** 30000 → '30s', 1500 → '1.5s'. */
function secondsText(ms: number): string {
  return `${Number((ms / 1000).toFixed(3))}s`;
}

/** Exit codes, as scripts (and systemd's ExecReload) rely on them. */
const EXIT_CODES = `exit codes:
  0  success (check-config: the file is valid)
  1  failure (check-config: the file has problems, each printed as file:line: key: expected …, got …;
     run: not started; status/tophosts/track: no answer or not found)
  2  usage error (unknown command or option, missing or extra argument); check-config: the file cannot
     be read
  check-intake exits as a Nagios plugin: 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN (bad options or file)`;

/** Which file to read: explicit, environment, system path, or none (embedded default). */
function chooseConfigPath(explicit: string | undefined): string | undefined {
  if (explicit !== undefined) return explicit;
  const env = process.env['TDC_MILTER_CONFIG'];
  if (env) return env;
  return fs.existsSync(SYSTEM_CONFIG) ? SYSTEM_CONFIG : undefined;
}

function loadConfig(path: string | undefined): ConfigResult {
  // Nothing here may throw into a signal handler: loadConfigFile reports, it does not throw.
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
  // One line and the old settings on any failure; never throws out of the signal handler.
  const reload = (target: TdcApp) => void target.reloadFrom(() => loadConfig(path));
  process.on('SIGHUP', () => {
    if (app === undefined) {
      logger.info('SIGHUP during start-up: reloading once started');
      reloadPending = true;
    } else {
      reload(app);
    }
  });
  // SIGUSR1: reopen log_file after logrotate moved it away (no copytruncate needed).
  process.on('SIGUSR1', () => {
    logger.reopen();
    if (m.logFile !== undefined && m.syslogSocket === undefined) logger.info(`SIGUSR1: log file ${m.logFile} reopened`);
  });
  const onStop = (signal: string) => {
    if (stopNow) stopNow(signal);
    else stopRequested ??= signal;
  };
  process.on('SIGTERM', () => onStop('SIGTERM'));
  process.on('SIGINT', () => onStop('SIGINT'));
  logger.info(`starting tdc-milter with ${path ?? 'the embedded default configuration'}`);
  // Socket activation: serve the socket systemd holds, so the MTA's connections wait in its backlog across a restart.
  const activation = listenFdsFromEnv(process.env, process.pid);
  unsetListenEnv(process.env);
  if (activation.kind === 'ignored') logger.warn(`socket activation not used: ${activation.reason}; binding listen itself`);
  const inheritedListener = activation.kind === 'inherited' ? activation.listener : undefined;
  if (inheritedListener && inheritedListener.passed > 1) logger.warn(`systemd passed ${inheritedListener.passed} sockets; serving fd ${inheritedListener.fd} only`);

  try {
    app = await TdcApp.start(first.config, { logger, ...(inheritedListener ? { inheritedListener } : {}) });
  } catch (err) {
    logger.error(`not started: ${describeError(err)}`);
    await logger.close();
    return 1;
  }
  const running = app;
  if (reloadPending) reload(running);
  void notifySystemd(['--ready', `--status=serving ${running.milter.listenAddress}`]).then((e) => e && logger.warn(`readiness not reported to systemd: ${e}`));

  return new Promise<number>((resolve) => {
    let stopping = false;
    stopNow = (signal: string) => {
      if (stopping) return;
      stopping = true;
      // The drain time of the settings in effect now (a SIGHUP may have changed it).
      const drainMs = running.config.milter.drainTime;
      const before = running.forwarder.counters();
      const started = Date.now();
      void notifySystemd(['STOPPING=1']);
      logger.info(
        `${signal} received: no new messages; ${before.activeRecipients} journal copies queued, ` +
          `draining for up to ${secondsText(drainMs)} (drain_time)`,
      );
      // Every timer of the queue is unref'd (none may keep a running daemon up), so a drain that only
      // waits (a copy waiting for its retry) would let the process end silently: hold it until done.
      const keepAlive = setInterval(() => {}, 1000);
      running
        .stop(drainMs)
        .catch((err: unknown) => logger.error(`shutdown: ${describeError(err)}`))
        .finally(() => {
          clearInterval(keepAlive);
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

/** What a command gets: the config file to use (undefined: the embedded default), operands, flags. */
interface CommandContext {
  path: string | undefined;
  operands: string[];
  flags: Set<string>;
}

interface Command extends CommandSpec {
  action(ctx: CommandContext): Promise<number>;
}

/** Print the file's problems and return 1, or return the loaded config. */
function loadOrReport(path: string | undefined): Extract<ConfigResult, { ok: true }> | number {
  const r = loadConfig(path);
  if (r.ok) return r;
  for (const e of r.errors) process.stderr.write(`${e}\n`);
  return 1;
}

/** `status` and `track` ask the running daemon's status endpoint. */
async function askDaemon(ctx: CommandContext, ask: (listen: string, json: boolean) => Promise<{ stdout: string; stderr: string; exitCode: number }>): Promise<number> {
  const r = loadOrReport(ctx.path);
  if (typeof r === 'number') return r;
  const out = await ask(r.config.milter.statusListen, ctx.flags.has('json'));
  process.stdout.write(out.stdout);
  process.stderr.write(out.stderr);
  return out.exitCode;
}

const JSON_OPTION = { name: 'json', help: 'machine-readable output' } as const;

/** Every command, its usage and its action: adding a command is one row here. */
const COMMANDS: readonly Command[] = [
  { name: 'run', help: 'start the milter daemon (the default command). SIGHUP reloads the file, SIGTERM drains and exits 0',
    action: (ctx) => run(ctx.path) },
  { name: 'check-config', help: 'check the file as the daemon would load it (CA file read, socket directory, addresses); exit 0 when valid, 1 with every problem',
    action: async (ctx) => {
      const r = loadConfig(ctx.path);
      if (r.ok) {
        process.stdout.write(`${ctx.path ?? '(embedded default)'}: configuration OK\n`);
        return 0;
      }
      // Problems are the command's report (stdout, exit 1); a file it cannot read at all is exit 2.
      for (const e of r.errors) (r.unreadable === true ? process.stderr : process.stdout).write(`${e}\n`);
      return r.unreadable === true ? 2 : 1;
    } },
  { name: 'config', help: 'print the effective settings for this machine and the layer each came from',
    action: async (ctx) => {
      const r = loadOrReport(ctx.path);
      if (typeof r === 'number') return r;
      process.stdout.write(describeEffective(r.config));
      return 0;
    } },
  { name: 'status', options: [JSON_OPTION],
    help: 'the.tdc.queue and each intake domain: active recipients, connections out, delivered, soft/hard bounced, dropped, queue bytes (asks the running daemon)',
    action: (ctx) => askDaemon(ctx, (listen, json) => statusCommand(listen, { json })) },
  { name: 'tophosts', options: [JSON_OPTION],
    help: 'the same numbers in the gateway\'s tophosts layout (hosts down at their last attempt marked *)',
    action: (ctx) => askDaemon(ctx, (listen, json) => tophostsCommand(listen, { json })) },
  { name: 'track', operands: ['ID'], options: [JSON_OPTION], help: 'the history of a journal copy, by copy id, MID, MTA queue id or Message-ID',
    action: (ctx) => askDaemon(ctx, (listen, json) => trackCommand(listen, ctx.operands[0], { json })) },
  // explain and check-intake parse their own options (lib/cli/, see ownOptions); listed here for the help.
  { name: 'explain', help: "what the daemon would do with a message: --from ADDR --rcpt ADDR [--rcpt …] [--client-ip IP] [--daemon-name NAME] [--auth USER] [--header 'Name: value' …]; the direction, each recipient's policy and decision, the intake of each copy; sends nothing",
    action: async (ctx) => finish(explainCommand(ctx.path !== undefined ? ['--config', ctx.path] : [], configFor)) },
  { name: 'check-intake', help: 'check the way to the intake: [ADDRESS] [--dns SERVER] [--port PORT] [--send]; relay or MX, STARTTLS (TLS 1.2+), certificate, MAIL FROM:<> and RCPT TO',
    action: async (ctx) => finish(await checkIntakeCommand(ctx.path !== undefined ? ['--config', ctx.path] : [], configFor)) },
  { name: 'help', help: 'print this help', action: async () => {
    process.stdout.write(usage());
    return 0;
  } },
];

function usage(): string {
  return formatUsage('tdc-milter', COMMANDS, EXIT_CODES);
}

/** Write a one-shot command's output; its exit code. */
function finish(out: { exitCode: number; stdout: string; stderr: string }): number {
  process.stdout.write(out.stdout);
  process.stderr.write(out.stderr);
  return out.exitCode;
}

/** The configuration for explain and check-intake: an explicit --config, or the default choice. */
function configFor(explicit: string | undefined): { result: ConfigResult; name: string } {
  const chosen = chooseConfigPath(explicit);
  return { result: loadConfig(chosen), name: chosen ?? '(embedded default)' };
}

/** explain and check-intake take repeated and optional arguments: their own parsers get argv (with any leading --config). */
function ownOptions(argv: string[]): { command: 'explain' | 'check-intake'; args: string[] } | undefined {
  const word = commandWord(argv);
  if (word === undefined || (word.name !== 'explain' && word.name !== 'check-intake')) return undefined;
  return { command: word.name, args: [...argv.slice(0, word.index), ...argv.slice(word.index + 1)] };
}

async function main(argv: string[]): Promise<number> {
  const own = ownOptions(argv);
  if (own?.command === 'explain') return finish(explainCommand(own.args, configFor));
  if (own?.command === 'check-intake') return finish(await checkIntakeCommand(own.args, configFor));
  const line = parseCommandLine(argv, COMMANDS, 'run');
  switch (line.kind) {
    case 'usage-error':
      process.stderr.write(`tdc-milter: ${line.message}\nusage: tdc-milter [COMMAND] [OPTIONS]; tdc-milter --help lists them\n`);
      return 2;
    case 'help':
      process.stdout.write(usage());
      return 0;
    case 'version':
      process.stdout.write(`tdc-milter ${VERSION}\n`);
      return 0;
    case 'command': {
      const command = COMMANDS.find((c) => c.name === line.command)!; // parseCommandLine only names listed commands
      return command.action({ path: chooseConfigPath(line.config), operands: line.operands, flags: line.flags });
    }
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
