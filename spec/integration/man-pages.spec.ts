/**
 * The generated man pages as man(1) reads them: `man -l` renders tdc-milter(8) and milter.conf(5)
 * without a warning; milter.conf(5) names every key of the schema table with its default, and
 * tdc-milter(8) every command and option of the CLI's --help, so neither can drift from the code.
 * Needs man-db and groff-base (scripts/test-deps.txt) and `npm run build` (for --help).
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { SCHEMA } from '../../lib/config/schema';
import { milterConfPage, parseHelp, releaseDate, roffText, tdcMilterPage } from '../../scripts/man-pages';
import { runCliSync } from '../support/daemon-process';

/** The page rendered as plain text by man -l; throws with man's own words when it warns or fails. */
function render(file: string): string {
  const r = spawnSync('man', ['--warnings', '-l', file], {
    encoding: 'utf8', timeout: 20_000, env: { ...process.env, MANWIDTH: '200', MAN_KEEP_FORMATTING: '', LANG: 'C.UTF-8' },
  });
  if (r.error) throw new Error(`man -l ${file}: ${r.error.message} (install the Debian package man-db)`);
  if (r.status !== 0 || r.stderr.trim() !== '') throw new Error(`man -l ${file}: exit ${r.status}\n${r.stderr}`);
  // Strip overstrike bold/underline, in case the pager path kept it.
  return r.stdout.replace(/.\x08/g, '');
}

describe('man pages generated from the schema', () => {
  let dir: string;
  const date = releaseDate(fs.readFileSync(path.join(__dirname, '..', '..', 'CHANGELOG.md'), 'utf8'));
  let usage = '';

  beforeAll(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tdc-man-'));
    fs.writeFileSync(path.join(dir, 'milter.conf.5'), milterConfPage(date));
    const help = runCliSync(['--help']);
    if (help.status !== 0) throw new Error(`tdc-milter --help: exit ${help.status}\n${help.stderr}`);
    usage = help.stdout;
    fs.writeFileSync(path.join(dir, 'tdc-milter.8'), tdcMilterPage(date, usage));
  });

  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('milter.conf(5) renders and lists every schema key with its default, in its section', () => {
    const text = render(path.join(dir, 'milter.conf.5'));
    expect(text).toMatch(/^MILTER\.CONF\(5\)/m);
    const sections = text.split(/^(?=\S)/m);
    for (const spec of SCHEMA) {
      const section = sections.find((s) => s.startsWith(`[${spec.section}`));
      expect({ key: spec.key, sectionFound: section !== undefined }).toEqual({ key: spec.key, sectionFound: true });
      const entry = new RegExp(`^ +${spec.key} = .*\\n(?: {8,}.*\\n)*? {8,}.*Default: ([^\\n]*)`, 'm').exec(section!);
      expect({ key: spec.key, listed: entry !== null }).toEqual({ key: spec.key, listed: true });
      const shown = spec.defaultNote ?? (spec.default === '' ? 'empty' : spec.default);
      expect(entry![1]).toContain(`${shown}.`);
    }
  });

  it('tdc-milter(8) renders with every command, option and exit code of --help, its files and the required Postfix setting', () => {
    const text = render(path.join(dir, 'tdc-milter.8'));
    expect(text).toMatch(/^TDC-MILTER\(8\)/m);
    const help = parseHelp(usage);
    const commands = help.get('commands') ?? [];
    expect(commands.map((c) => c.term.split(' ')[0])).toEqual(expect.arrayContaining(['run', 'check-config', 'config', 'status', 'track', 'help']));
    for (const section of ['COMMANDS', 'OPTIONS', 'EXIT STATUS']) expect(text).toMatch(new RegExp(`^${section}$`, 'm'));
    for (const e of [...commands, ...(help.get('options') ?? []), ...(help.get('exit codes') ?? [])]) {
      const term = e.term === '' ? e.text.slice(0, 30) : e.term;
      expect({ term, onPage: text.includes(term.replace(/\u2026/g, '...')) }).toEqual({ term, onPage: true });
    }
    for (const word of ['/etc/tdc-milter/milter.conf', 'tdc-milter.socket', 'milter_default_action = accept', 'milter.conf(5)', 'SIGHUP', 'SIGUSR1']) {
      expect(text).toContain(word);
    }
  });

  it('reads the sections of --help: terms, continued lines, entries without a term', () => {
    const help = parseHelp('usage: x\n\ncommands:\n  run               start it\n                    and more\n  track ID [--json]  look\n\nexit codes:\n  0  fine\n  other notes here\n');
    expect(help.get('commands')).toEqual([{ term: 'run', text: 'start it and more' }, { term: 'track ID [--json]', text: 'look' }]);
    expect(help.get('exit codes')).toEqual([{ term: '0', text: 'fine' }, { term: '', text: 'other notes here' }]);
  });

  it('escapes what roff would take as markup', () => {
    expect(roffText('.starts with a dot')).toBe('\\&.starts with a dot');
    expect(roffText("'quote")).toBe("\\&'quote");
    expect(roffText('a\\b-c')).toBe('a\\eb\\-c');
  });

  it('takes the date from the newest CHANGELOG entry, and refuses a changelog without one', () => {
    expect(releaseDate('# Changelog\n\n## 1.2.3 - 2027-01-02\n\n- x\n\n## 1.2.2 - 2026-12-01\n')).toBe('2027-01-02');
    expect(() => releaseDate('# Changelog\n')).toThrow(/no "## VERSION - YYYY-MM-DD" entry/);
  });
});
