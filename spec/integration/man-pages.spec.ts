/**
 * The generated man pages as man(1) reads them: `man -l` renders tdc-milter(8) and milter.conf(5)
 * without a warning, and milter.conf(5) names every key of the schema table with its default, so the
 * page cannot drift from the code. Needs man-db and groff-base (scripts/test-deps.txt).
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { SCHEMA } from '../../lib/config/schema';
import { milterConfPage, releaseDate, roffText, tdcMilterPage } from '../../scripts/man-pages';

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

  beforeAll(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tdc-man-'));
    fs.writeFileSync(path.join(dir, 'milter.conf.5'), milterConfPage(date));
    fs.writeFileSync(path.join(dir, 'tdc-milter.8'), tdcMilterPage(date));
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

  it('tdc-milter(8) renders with its commands, files and the required Postfix setting', () => {
    const text = render(path.join(dir, 'tdc-milter.8'));
    expect(text).toMatch(/^TDC-MILTER\(8\)/m);
    for (const word of ['check-config', 'config', 'status', 'track', '--config', '/etc/tdc-milter/milter.conf', 'milter_default_action = accept', 'milter.conf(5)']) {
      expect(text).toContain(word);
    }
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
