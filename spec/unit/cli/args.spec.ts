/**
 * The command line's grammar (lib/cli/args): strict parsing from the command table, usage errors in
 * plain words, and a usage text that lists every command and option of the table.
 */
import { GLOBAL_OPTIONS, commandWord, formatUsage, parseCommandLine, type CommandSpec } from '../../../lib/cli/args';

const TABLE: CommandSpec[] = [
  { name: 'run', help: 'start the daemon' },
  { name: 'check-config', help: 'check the file' },
  { name: 'status', options: [{ name: 'json', help: 'JSON' }], help: 'the queue' },
  { name: 'track', operands: ['ID'], options: [{ name: 'json', help: 'JSON' }], help: 'a copy' },
];

const parse = (...argv: string[]) => parseCommandLine(argv, TABLE, 'run');

describe('parseCommandLine', () => {
  it.each<[string[], object]>([
    [[], { kind: 'command', command: 'run', operands: [], config: undefined }],
    [['run', '--config', '/etc/x.conf'], { kind: 'command', command: 'run', config: '/etc/x.conf' }],
    [['--config=/etc/x.conf', 'check-config'], { kind: 'command', command: 'check-config', config: '/etc/x.conf' }],
    [['check-config', '-c', 'a.conf'], { kind: 'command', command: 'check-config', config: 'a.conf' }],
    [['track', 'ABC123.1', '--json'], { kind: 'command', command: 'track', operands: ['ABC123.1'] }],
    [['--version'], { kind: 'version' }],
    [['-V'], { kind: 'version' }],
    [['--help'], { kind: 'help' }],
    [['-h'], { kind: 'help' }],
    [['check-config', '--help'], { kind: 'help' }],
  ])('%j', (argv, expected) => expect(parse(...argv)).toMatchObject(expected));

  it('collects flags', () => {
    const r = parse('status', '--json');
    expect(r.kind === 'command' && [...r.flags]).toEqual(['json']);
  });

  it.each<[string[], string]>([
    [['--bogus'], 'unknown option --bogus'],
    [['-x'], 'unknown option -x'],
    [['check-config', '--config'], '--config needs a value'],
    [['check-config', '--json'], 'option --json is not an option of check-config'],
    [['frobnicate'], 'unknown command "frobnicate"'],
    [['run', 'extra'], 'unexpected argument "extra" for run'],
    [['track'], 'track needs ID'],
    [['track', 'a', 'b'], 'unexpected argument "b" for track'],
    [['run', '--config='], '--config needs a file name'],
  ])('%j is a usage error', (argv, message) => expect(parse(...argv)).toEqual({ kind: 'usage-error', message }));
});

describe('formatUsage', () => {
  const text = formatUsage('tdc-milter', TABLE, 'exit codes: 0 1 2');

  it('lists every command with its operands and options, every option, and the exit codes', () => {
    expect(text).toMatch(/^usage: tdc-milter \[COMMAND\] \[OPTIONS\]$/m);
    for (const c of TABLE) expect(text).toMatch(new RegExp(`^  ${c.name}\\b.*${c.help}`, 'm'));
    expect(text).toMatch(/^  track ID \[--json\]/m);
    for (const o of GLOBAL_OPTIONS) expect(text).toContain(`-${o.short}, --${o.name}`);
    expect(text).toMatch(/^  --json\s+\(status, track\) JSON$/m);
    expect(text).toContain('exit codes: 0 1 2');
  });

  it('keeps every line within 100 columns', () => {
    expect(text.split('\n').filter((l) => l.length > 100)).toEqual([]);
  });
});

describe('commandWord', () => {
  // explain and check-intake parse their own options: main finds their word however --config is written.
  it.each<[string[], { name: string; index: number } | undefined]>([
    [['explain', '--from', 'a@b.example'], { name: 'explain', index: 0 }],
    [['--config', 'x.conf', 'explain'], { name: 'explain', index: 2 }],
    [['-c', 'explain', 'check-intake'], { name: 'check-intake', index: 2 }],
    [['--config=x.conf', 'explain', '--rcpt', 'c@d.example'], { name: 'explain', index: 1 }],
    [['-cx.conf', 'check-intake', 'i@intake.example'], { name: 'check-intake', index: 1 }],
    [['--help'], undefined],
    [[], undefined],
  ])('%j', (argv, expected) => expect(commandWord(argv)).toEqual(expected));
});
