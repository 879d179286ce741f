/**
 * scripts/install-deps.sh, the pretest that installs the Debian packages the specs need: it does
 * nothing when all are installed, refuses clearly when not root, and around an install puts a
 * policy-rc.d (exit 101) in place only when none exists, removing only the one it made. apt-get and
 * debconf-set-selections are stand-ins on PATH that record what they saw, so nothing is installed.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

const SCRIPT = path.resolve(__dirname, '..', '..', 'scripts', 'install-deps.sh');
const MISSING = 'tdc-milter-spec-no-such-package';

describe('scripts/install-deps.sh', () => {
  let dir: string;
  let policy: string;
  let aptLog: string;

  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tdc-deps-'));
    fs.chmodSync(dir, 0o755);
    policy = path.join(dir, 'policy-rc.d');
    aptLog = path.join(dir, 'apt.log');
    const bin = path.join(dir, 'bin');
    fs.mkdirSync(bin);
    // The stand-in apt-get records its arguments and whether a policy-rc.d that exits 101 was there.
    fs.writeFileSync(path.join(bin, 'apt-get'),
      `#!/bin/sh\nif [ -x ${policy} ]; then ${policy}; p=$?; else p=none; fi\necho "apt-get $* policy=$p" >> ${aptLog}\n`, { mode: 0o755 });
    fs.writeFileSync(path.join(bin, 'debconf-set-selections'), '#!/bin/sh\ncat >/dev/null\n', { mode: 0o755 });
  });

  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  function list(...lines: string[]): string {
    const file = path.join(dir, 'deps.txt');
    fs.writeFileSync(file, lines.join('\n'));
    fs.chmodSync(file, 0o644);
    return file;
  }

  function run(args: string[], asNobody = false): { status: number | null; out: string } {
    const env = { ...process.env, PATH: `${path.join(dir, 'bin')}:${process.env['PATH']}`, TDC_POLICY_RC_D: policy };
    // As nobody, from a copy in our own 0755 directory: the checkout may sit under a directory
    // nobody cannot enter (a mktemp -d clone is 0700).
    let script = SCRIPT;
    if (asNobody) {
      script = path.join(dir, 'install-deps.sh');
      fs.copyFileSync(SCRIPT, script);
      fs.chmodSync(script, 0o755);
    }
    const cmd = asNobody ? ['setpriv', '--reuid=nobody', '--regid=nogroup', '--clear-groups', 'bash', script, ...args] : ['bash', SCRIPT, ...args];
    const r = spawnSync(cmd[0]!, cmd.slice(1), { encoding: 'utf8', env, timeout: 30_000 });
    if (r.error) throw r.error;
    return { status: r.status, out: r.stdout + r.stderr };
  }

  const aptCalls = (): string[] => (fs.existsSync(aptLog) ? fs.readFileSync(aptLog, 'utf8').trim().split('\n') : []);

  it('does nothing when every listed package is installed (comments and blank lines ignored)', () => {
    const r = run([list('# the shell', 'bash   # always there', '', 'dpkg coreutils')]);
    expect(r).toEqual({ status: 0, out: expect.stringMatching(/Debian packages of .* are installed/) });
    expect(aptCalls()).toEqual([]);
  });

  it('not as root, with a package missing: exit 1, naming it and the apt-get line', () => {
    const r = run([list('bash', MISSING)], true);
    expect(r.status).toBe(1);
    expect(r.out).toContain(`missing Debian packages: ${MISSING}`);
    expect(r.out).toContain(`apt-get install --no-install-recommends ${MISSING}`);
    expect(aptCalls()).toEqual([]);
  });

  it('installs only the missing ones, under a policy-rc.d it creates (exit 101) and removes afterwards', () => {
    if (process.getuid?.() !== 0) throw new Error('this case runs the script as root, as npm test does');
    const r = run([list('bash', MISSING)]);
    expect(r.status).toBe(0);
    expect(r.out).toContain(`installing ${MISSING}`);
    const calls = aptCalls();
    expect(calls).toHaveLength(1);
    expect(calls[0]).toMatch(new RegExp(`install -y --no-install-recommends ${MISSING} policy=101$`));
    expect(fs.existsSync(policy)).toBe(false);
  });

  it('keeps an existing policy-rc.d as it was', () => {
    if (process.getuid?.() !== 0) throw new Error('this case runs the script as root, as npm test does');
    const mine = '#!/bin/sh\n# the image\'s own\nexit 101\n';
    fs.writeFileSync(policy, mine, { mode: 0o755 });
    const r = run([list(MISSING)]);
    expect(r.status).toBe(0);
    expect(aptCalls()[0]).toMatch(/policy=101$/);
    expect(fs.readFileSync(policy, 'utf8')).toBe(mine);
  });

  it('refuses to run without a list, or with one it cannot read', () => {
    expect(run([]).status).toBe(2);
    const r = run([path.join(dir, 'nope.txt')]);
    expect(r).toEqual({ status: 2, out: expect.stringContaining('cannot read') });
  });
});
