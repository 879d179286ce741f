/**
 * The MTA examples as the tools read them: Postfix's postconf parses examples/postfix-main.cf and
 * postfix-master.cf without a warning and sees the milter settings; m4 expands examples/sendmail.mc
 * into the filter line and macro lists we document; logrotate.conf renames and signals SIGUSR1.
 * Needs postconf (Debian package postfix) and m4, which .ci/run installs.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

const EXAMPLES = path.resolve(__dirname, '../../examples');
const read = (name: string) => fs.readFileSync(path.join(EXAMPLES, name), 'utf8');

function run(cmd: string, args: string[], input?: string): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(cmd, args, { encoding: 'utf8', input, timeout: 20_000 });
  if (r.error) throw new Error(`${cmd} could not run (${r.error.message}); .ci/run installs the Debian packages the specs need`);
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** Postfix sleeps ~2 s before reading a config file written within the last second; age them. */
function backdate(dir: string): void {
  const past = new Date(Date.now() - 10_000);
  for (const f of ['main.cf', 'master.cf']) fs.utimesSync(path.join(dir, f), past, past);
}

const POSTCONF = fs.existsSync('/usr/sbin/postconf') ? '/usr/sbin/postconf' : 'postconf';

describe('examples/postfix-main.cf and postfix-master.cf', () => {
  let dir: string;

  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tdc-postconf-'));
    // myhostname/mydomain given, so postconf has no reason to look up this machine's name.
    fs.writeFileSync(path.join(dir, 'main.cf'), `${read('postfix-main.cf')}\nmyhostname = mx.example.test\nmydomain = example.test\n`);
    fs.copyFileSync(path.join(EXAMPLES, 'postfix-master.cf'), path.join(dir, 'master.cf'));
    backdate(dir);
  });

  afterEach(() => {
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('postconf reads main.cf without warnings and sees the milter settings', () => {
    const r = run(POSTCONF, ['-c', dir, '-n']);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    const lines = r.stdout.split('\n').filter((l) => l !== '' && !/^(config_directory|myhostname|mydomain) =/.test(l));
    expect(lines).toEqual([
      'milter_default_action = accept',
      'milter_protocol = 6',
      'non_smtpd_milters =',
      'smtpd_milters = inet:127.0.0.1:8894',
    ]);
  });

  it('postconf would warn about a misspelt parameter (the check can fail)', () => {
    fs.appendFileSync(path.join(dir, 'main.cf'), 'smtpd_miltres = inet:127.0.0.1:8894\n');
    backdate(dir);
    expect(run(POSTCONF, ['-c', dir, '-n']).stderr).toMatch(/unused parameter: smtpd_miltres/);
  });

  it('master.cf gives submission and smtps the daemon name ORIGINATING', () => {
    const r = run(POSTCONF, ['-c', dir, '-P']);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(r.stdout).toContain('submission/inet/milter_macro_daemon_name = ORIGINATING\n');
    expect(r.stdout).toContain('smtps/inet/milter_macro_daemon_name = ORIGINATING\n');
    expect(run(POSTCONF, ['-c', dir, '-M']).stdout.split('\n').filter((l) => l !== '').map((l) => l.split(/\s+/).slice(0, 2).join('/'))).toEqual([
      'submission/inet',
      'smtps/inet',
    ]);
  });

  it('explains the unix socket path under chroot', () => {
    const text = read('postfix-main.cf');
    expect(text).toContain('smtpd_milters = unix:/tdc/tdc.sock');
    expect(text).toContain('smtpd_milters = unix:/var/spool/postfix/tdc/tdc.sock');
    expect(text).toMatch(/WHY accept:/);
  });
});

describe('examples/sendmail.mc', () => {
  /** Expand the snippet with INPUT_MAIL_FILTER stubbed, then print the macro lists it defines. */
  function expand(mc: string): { status: number | null; stdout: string; stderr: string } {
    const prelude = "define(`INPUT_MAIL_FILTER', `FILTER[$1][$2]\n')dnl\n";
    const probe = 'CONNECT[confMILTER_MACROS_CONNECT]\nENVFROM[confMILTER_MACROS_ENVFROM]\nEOM[confMILTER_MACROS_EOM]\n';
    return run('m4', [], prelude + mc + probe);
  }

  it('m4 expands it to the tdc filter with F= empty and the macro lists', () => {
    const r = expand(read('sendmail.mc'));
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(r.stdout).toBe(
      [
        'FILTER[tdc][S=inet:8894@127.0.0.1, F=, T=C:10s;S:10s;R:10s;E:1m]',
        'CONNECT[j, _, {daemon_name}, {if_name}, {if_addr}, {client_addr}]',
        'ENVFROM[i, {auth_type}, {auth_authen}, {auth_ssf}, {auth_author}, {mail_mailer}, {mail_host}, {mail_addr}]',
        'EOM[{msg_id}, i]',
        '',
      ].join('\n'),
    );
  });

  it('an unbalanced quote would show (the check can fail)', () => {
    const broken = read('sendmail.mc').replace("`tdc',", '`tdc,');
    const r = expand(broken);
    expect(r.stderr).toMatch(/end of file in argument list/);
    expect(r.stdout).not.toContain('FILTER[tdc]');
  });
});

describe('examples/logrotate.conf', () => {
  it('rotates the log_file directory as the log directory owner, then tells the daemon to reopen (SIGUSR1)', () => {
    const text = read('logrotate.conf');
    const block = /^(\/var\/log\/tdc-milter\/\*\.log) \{\n([\s\S]*?)\n\}/m.exec(text);
    expect(block).not.toBeNull();
    const directives = block![2]!.split('\n').map((l) => l.trim());
    expect(directives).not.toContain('copytruncate');
    expect(block![2]).toMatch(/postrotate\n\s*systemctl kill --signal=USR1 --kill-whom=main tdc-milter\.service.*\n\s*endscript/);
    expect(directives).toContain('su tdc-milter postfix');
    expect(directives).toContain('missingok');
    // The unit's LogsDirectory is the directory rotated here.
    expect(read('tdc-milter.service')).toMatch(/^LogsDirectory=tdc-milter$/m);
  });
});
