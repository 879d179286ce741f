/**
 * The command line's grammar: a table of commands (name, operands, options, one line of help) →
 * strict parsing with node:util parseArgs (an unknown option, a missing value or an extra argument is
 * a usage error, exit 2) and the usage text generated from the same table, so help cannot drift.
 * Pure; imports node:util only. What each command does is main.ts's business.
 */
import { parseArgs } from 'node:util';

export interface OptionSpec {
  /** The long name without dashes, e.g. 'json'. */
  name: string;
  short?: string;
  /** Takes a value (`--config FILE`): the value's name in the usage text. */
  value?: string;
  help: string;
}

export interface CommandSpec {
  name: string;
  /** Operand names as shown in the usage text, e.g. ['ID']; all are required. */
  operands?: readonly string[];
  /** Options of this command besides the global ones. */
  options?: readonly OptionSpec[];
  /** What it does, one or two short lines (wrapped by the usage text). */
  help: string;
}

/** Options every command takes. */
export const GLOBAL_OPTIONS: readonly OptionSpec[] = [
  { name: 'config', short: 'c', value: 'FILE', help: 'the configuration file (default: $TDC_MILTER_CONFIG, else /etc/tdc-milter/milter.conf if it exists, else the embedded default)' },
  { name: 'help', short: 'h', help: 'print this help and exit 0' },
  { name: 'version', short: 'V', help: 'print the version and exit 0' },
];

export type CommandLine =
  | { kind: 'help' }
  | { kind: 'version' }
  | { kind: 'command'; command: string; operands: string[]; config: string | undefined; flags: Set<string> }
  | { kind: 'usage-error'; message: string };

function dashed(o: OptionSpec): string {
  return `--${o.name}`;
}

/**
 * argv (without node and the script) → what to do. The first operand names the command
 * (`defaultCommand` when there is none); options may stand before or after it.
 */
export function parseCommandLine(argv: readonly string[], commands: readonly CommandSpec[], defaultCommand: string): CommandLine {
  const all = [...GLOBAL_OPTIONS, ...commands.flatMap((c) => c.options ?? [])];
  const options: Record<string, { type: 'string' | 'boolean'; short?: string }> = {};
  for (const o of all) options[o.name] = { type: o.value !== undefined ? 'string' : 'boolean', ...(o.short ? { short: o.short } : {}) };
  let parsed: ReturnType<typeof parseArgs>;
  try {
    parsed = parseArgs({ args: [...argv], options, allowPositionals: true, strict: true, tokens: true });
  } catch (err) {
    return { kind: 'usage-error', message: explain(err) };
  }
  const values = parsed.values as Record<string, string | boolean | undefined>;
  if (values['help'] === true) return { kind: 'help' };
  if (values['version'] === true) return { kind: 'version' };
  const [name = defaultCommand, ...operands] = parsed.positionals;
  const command = commands.find((c) => c.name === name);
  if (command === undefined) return { kind: 'usage-error', message: `unknown command ${JSON.stringify(name)}` };
  const own = new Set([...GLOBAL_OPTIONS, ...(command.options ?? [])].map((o) => o.name));
  for (const t of parsed.tokens ?? []) {
    if (t.kind === 'option' && !own.has(t.name)) return { kind: 'usage-error', message: `option ${t.rawName} is not an option of ${command.name}` };
  }
  const wanted = command.operands ?? [];
  if (operands.length < wanted.length) return { kind: 'usage-error', message: `${command.name} needs ${wanted.slice(operands.length).join(' ')}` };
  if (operands.length > wanted.length) return { kind: 'usage-error', message: `unexpected argument ${JSON.stringify(operands[wanted.length])} for ${command.name}` };
  const flags = new Set(Object.keys(values).filter((k) => values[k] === true));
  const config = typeof values['config'] === 'string' ? values['config'] : undefined;
  if (config === '') return { kind: 'usage-error', message: '--config needs a file name' };
  return { kind: 'command', command: command.name, operands, config, flags };
}

/**
 * The command word of argv and where it stands: the first operand, past any global option before it
 * (`--config FILE`, `-c FILE`, `--config=FILE`, `-cFILE`, flags). Undefined when there is none.
 */
export function commandWord(argv: readonly string[]): { name: string; index: number } | undefined {
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--config' || a === '-c') i++; // its value is no command
    else if (!a.startsWith('-')) return { name: a, index: i };
  }
  return undefined;
}

/** For commands with their own parseArgs options (explain, check-intake): its errors in our words. */
export function parseStrict<T>(parse: () => T): T {
  try {
    return parse();
  } catch (err) {
    throw new Error(explain(err));
  }
}

/** node:util's errors, in our words (its own advise quoting with `--`, which no option here needs). */
function explain(err: unknown): string {
  const e = err as { code?: string; message?: string };
  const quoted = /'([^']*)'/.exec(e.message ?? '')?.[1];
  switch (e.code) {
    case 'ERR_PARSE_ARGS_UNKNOWN_OPTION': return `unknown option ${quoted ?? ''}`.trimEnd();
    case 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE': {
      const name = /--[\w-]+/.exec(e.message ?? '')?.[0];
      return name !== undefined && /argument missing/.test(e.message ?? '') ? `${name} needs a value` : e.message ?? 'bad option value';
    }
    default: return e.message ?? String(err);
  }
}

function wrap(text: string, indent: number, width = 100): string {
  const out: string[] = [];
  let line = '';
  for (const word of text.split(' ')) {
    if (line !== '' && indent + line.length + 1 + word.length > width) {
      out.push(line);
      line = word;
    } else line = line === '' ? word : `${line} ${word}`;
  }
  out.push(line);
  return out.join(`\n${' '.repeat(indent)}`);
}

function optionText(o: OptionSpec): string {
  return `${o.short ? `-${o.short}, ` : ''}${dashed(o)}${o.value ? ` ${o.value}` : ''}`;
}

/** The usage text: every command with its operands and options, then the global options and exit codes. */
export function formatUsage(program: string, commands: readonly CommandSpec[], exitCodes: string): string {
  const col = 30;
  const row = (left: string, help: string) =>
    left.length < col - 1 ? `  ${left.padEnd(col - 2)}${wrap(help, col)}` : `  ${left}\n${' '.repeat(col)}${wrap(help, col)}`;
  const lines = [`usage: ${program} [COMMAND] [OPTIONS]`, '', 'commands:'];
  for (const c of commands) {
    const opts = (c.options ?? []).map((o) => `[${dashed(o)}${o.value ? ` ${o.value}` : ''}]`);
    lines.push(row([c.name, ...(c.operands ?? []), ...opts].join(' '), c.help));
  }
  lines.push('', 'options:');
  for (const o of GLOBAL_OPTIONS) lines.push(row(optionText(o), o.help));
  const byName = new Map<string, { o: OptionSpec; of: string[] }>();
  for (const c of commands) for (const o of c.options ?? []) {
    const seen = byName.get(o.name) ?? { o, of: [] };
    seen.of.push(c.name);
    byName.set(o.name, seen);
  }
  for (const { o, of } of byName.values()) lines.push(row(optionText(o), `(${of.join(', ')}) ${o.help}`));
  lines.push('', exitCodes);
  return `${lines.join('\n')}\n`;
}
