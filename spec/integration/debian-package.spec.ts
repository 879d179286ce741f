/**
 * The Debian package as an admin meets it: `npm run package`'s script builds the .deb, lintian finds
 * nothing it does not override, `dpkg -i` installs it, the installed /usr/bin/tdc-milter says its
 * version, checks its config and journals mail through a real Postfix to a STARTTLS intake, and `dpkg -r` / `dpkg -P`
 * leave only what Debian keeps. Needs root, dpkg-deb, lintian (scripts/test-deps.txt) and `npm run build`.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { DaemonProcess, writeConfig } from '../support/daemon-process';
import { freePort, sleep } from '../support/mta-sandbox';
import { startPostfix, type PostfixInstance } from '../support/postfix';
import { ScriptedIntake, TEST_CA_FILE } from '../support/scripted-intake';
import { SmtpClient } from '../support/smtp-client';
import { until } from '../support/forwarder-harness';
import { finalLinesOf, outcomeOf } from '../support/gateway-log';

const ROOT = path.resolve(__dirname, '..', '..');
const VERSION = (JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;
const DEB = path.join(ROOT, 'dist', `tdc-milter_${VERSION}_amd64.deb`);
const BIN = '/usr/bin/tdc-milter';

interface Run { status: number | null; stdout: string; stderr: string }

function run(cmd: string, args: string[], timeoutMs = 60_000): Run {
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: timeoutMs, env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
  if (r.error) throw new Error(`${cmd} ${args.join(' ')}: ${r.error.message}`);
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

function ok(cmd: string, args: string[], timeoutMs?: number): string {
  const r = run(cmd, args, timeoutMs);
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')}: exit ${r.status}\n${r.stdout}${r.stderr}`);
  return r.stdout;
}

/** dpkg, waiting while another dpkg or apt (another engineer's install) holds the lock. */
async function dpkg(args: string[]): Promise<string> {
  for (let i = 0; ; i++) {
    const r = run('dpkg', args, 300_000);
    if (r.status === 0) return r.stdout;
    if (!/lock/i.test(r.stderr) || i >= 150) throw new Error(`dpkg ${args.join(' ')}: exit ${r.status}\n${r.stdout}${r.stderr}`);
    await sleep(2000);
  }
}

function installed(): boolean {
  return run('dpkg-query', ['-W', '-f=${Status}', 'tdc-milter']).stdout === 'install ok installed';
}

/** Every path dpkg installed for the package (files and directories it owns). */
function packageFiles(): string[] {
  return ok('dpkg-query', ['-L', 'tdc-milter']).split('\n').filter((l) => l !== '' && l !== '/.');
}

/** The symlinks that enable our units under /etc/systemd/system. */
function enabledLinks(): string[] {
  const root = '/etc/systemd/system';
  if (!fs.existsSync(root)) return [];
  return fs.readdirSync(root, { withFileTypes: true })
    .filter((d) => d.isDirectory())
    .flatMap((d) => fs.readdirSync(path.join(root, d.name)).filter((f) => f.startsWith('tdc-milter.')).map((f) => path.join(root, d.name, f)));
}

function config(milterPort: number, intakePort: number): string {
  return `[milter]
listen = inet:127.0.0.1:${milterPort}
status_listen = no
hostname = gw.example.test

[tdc]
enabled = yes
intake_address = journal@intake.test
relay = [127.0.0.1]:${intakePort}
tls_ca_file = ${TEST_CA_FILE}
max_queue_age = 20s
retry_delay = 1s
connect_timeout = 2s
command_timeout = 5s
`;
}

describe('the Debian package', () => {
  let files: string[] = [];

  beforeAll(async () => {
    if (process.getuid?.() !== 0) throw new Error('the Debian package spec installs the package and must run as root');
    if (!fs.existsSync(path.join(ROOT, 'dist', 'lib', 'main.js'))) throw new Error('dist/lib/main.js is missing: run "npm run build" (npm test builds first)');
    // A package left by an interrupted run would hide what this one installs.
    if (run('dpkg-query', ['-W', '-f=${Status}', 'tdc-milter']).stdout !== '') await dpkg(['--purge', 'tdc-milter']);
    ok('bash', [path.join(ROOT, 'scripts', 'build-package.sh')], 600_000);
  }, 900_000);

  afterAll(async () => {
    if (run('dpkg-query', ['-W', '-f=${Status}', 'tdc-milter']).stdout !== '') await dpkg(['--purge', 'tdc-milter']);
  }, 300_000);

  it('is built as dist/tdc-milter_<version>_amd64.deb with its control fields', () => {
    const fields = ok('dpkg-deb', ['--field', DEB, 'Package', 'Version', 'Architecture', 'Depends']);
    expect(fields).toContain('Package: tdc-milter');
    expect(fields).toContain(`Version: ${VERSION}`);
    expect(fields).toContain('Architecture: amd64');
    expect(fields).toMatch(/Depends: .*adduser/);
    expect(ok('dpkg-deb', ['--info', DEB])).toMatch(/ conffiles\b/);
  });

  it('passes lintian (every remaining finding overridden and justified in the README)', () => {
    const r = run('lintian', ['--fail-on', 'error,warning', DEB], 600_000);
    const findings = `${r.stdout}${r.stderr}`.split('\n').filter((l) => /^[EWI]: /.test(l));
    expect(findings).toEqual([]);
    expect(r.status).toBe(0);
  }, 600_000);

  it('installs with dpkg -i: a single executable, conffile, unit, docs, man pages, user and socket directory', async () => {
    await dpkg(['-i', DEB]);
    expect(installed()).toBe(true);
    files = packageFiles();
    for (const f of [
      BIN, '/etc/tdc-milter/milter.conf', '/usr/share/doc/tdc-milter/examples/milter.conf.example.gz',
      '/lib/systemd/system/tdc-milter.service', '/lib/systemd/system/tdc-milter.socket', '/usr/share/doc/tdc-milter/README.md', '/usr/share/doc/tdc-milter/copyright',
      '/usr/share/doc/tdc-milter/changelog.gz', '/usr/share/doc/tdc-milter/examples/postfix-main.cf',
      '/usr/share/doc/tdc-milter/examples/sendmail.mc', '/usr/share/man/man8/tdc-milter.8.gz', '/usr/share/man/man5/milter.conf.5.gz',
    ]) {
      expect({ file: f, installed: files.includes(f) && fs.existsSync(f) }).toEqual({ file: f, installed: true });
    }
    // A single executable: an ELF file (node with our code injected, its SEA fuse flipped), no script.
    const bin = fs.readFileSync(BIN);
    expect(bin.subarray(0, 4).toString('latin1')).toBe('\x7fELF');
    expect(bin.includes('NODE_SEA_FUSE_fce680ab2cc467b6e072b8b5df1996b2:1')).toBe(true);
    expect(ok('dpkg-query', ['-W', '-f=${Conffiles}', 'tdc-milter'])).toContain('/etc/tdc-milter/milter.conf');

    const user = ok('getent', ['passwd', 'tdc-milter']).split(':');
    expect(user[5]).toBe('/nonexistent');
    expect(user[6]!.trim()).toMatch(/nologin|false/);
    const group = ok('id', ['-gn', 'tdc-milter']).trim();
    expect(group).toBe('postfix'); // Postfix is installed on the test machine
    const spool = fs.statSync('/var/spool/postfix/tdc');
    expect(spool.mode & 0o777).toBe(0o750);
    expect(ok('stat', ['-c', '%U:%G', '/var/spool/postfix/tdc']).trim()).toBe('tdc-milter:postfix');
    expect(ok('man', ['-w', 'milter.conf']).trim()).toBe('/usr/share/man/man5/milter.conf.5.gz');
    // Enabled as Debian enables a package's units (deb-systemd-helper), whether or not systemd runs here.
    expect(enabledLinks().sort()).toEqual([
      '/etc/systemd/system/multi-user.target.wants/tdc-milter.service', '/etc/systemd/system/sockets.target.wants/tdc-milter.socket',
    ]);
  }, 600_000);

  it('the installed binary says its version and accepts its own config file, journaling off', () => {
    const check = run(BIN, ['check-config', '--config', '/etc/tdc-milter/milter.conf']);
    expect({ status: check.status, out: check.stdout + check.stderr }).toEqual({ status: 0, out: expect.any(String) });
    const effective = ok(BIN, ['config', '--config', '/etc/tdc-milter/milter.conf']);
    expect(effective).toMatch(/^enabled = no\b/m);
    // No address from the example is in force: turning journaling on cannot send copies to one of them.
    const live = fs.readFileSync('/etc/tdc-milter/milter.conf', 'utf8').split('\n').filter((l) => !/^\s*#/.test(l));
    expect(live.filter((l) => /^intake_address\s*=\s*\S+@/.test(l))).toEqual([]);
    expect(live.filter((l) => /^\[(policy (?!DEFAULT)|group |machine )/.test(l))).toEqual([]);
    expect(ok(BIN, ['--version']).trim()).toBe(`tdc-milter ${VERSION}`);
    expect(ok(BIN, ['--help'])).toMatch(/usage: tdc-milter/);
  });

  it('the installed binary journals mail that went through a real Postfix to a STARTTLS intake', async () => {
    const intake = await ScriptedIntake.start();
    const milterPort = await freePort();
    let daemon: DaemonProcess | undefined;
    let postfix: PostfixInstance | undefined;
    try {
      daemon = await DaemonProcess.start(writeConfig(config(milterPort, intake.port), 'tdc-deb-'), 20_000, { program: [BIN] });
      postfix = await startPostfix({ milters: `inet:127.0.0.1:${milterPort}` });
      const client = await SmtpClient.connect(postfix.smtpPort);
      await client.ehlo('mx.partner.test');
      const data = Buffer.from('From: alice@partner.test\r\nTo: ann@example.test\r\nSubject: via the package\r\n' +
        'Message-ID: <deb-1@partner.test>\r\n\r\nhello from the installed binary\r\n');
      const { queueId } = await client.send({ from: 'alice@partner.test', to: ['ann@example.test'], data });
      await client.quit();
      await postfix.waitForDelivered(1);
      await until(() => intake.received.length >= 1, 20_000, 'the journal copy at the intake');
      const got = intake.received[0]!;
      expect(got.rcptTo).toEqual(['journal@intake.test']);
      expect(got.mailFrom).toBe('');
      expect(got.secure).toBe(true);
      expect(got.raw.toString('latin1')).toContain('hello from the installed binary');
      await until(() => finalLinesOf(daemon!.lines, `${queueId}.1`).length > 0, 10_000, 'the final line of the copy');
      expect(finalLinesOf(daemon.lines, `${queueId}.1`).map(outcomeOf)).toEqual(['delivered']);
    } finally {
      await postfix?.stop();
      await daemon?.stop(10_000);
      await intake.close();
    }
  }, 120_000);

  it('installed again over itself (as an upgrade runs), it keeps the admin\'s edits to milter.conf', async () => {
    const conf = '/etc/tdc-milter/milter.conf';
    fs.appendFileSync(conf, '\n# edited by the admin\n');
    await dpkg(['-i', DEB]);
    expect(installed()).toBe(true);
    expect(fs.readFileSync(conf, 'utf8')).toContain('# edited by the admin');
    expect(ok('stat', ['-c', '%U:%G %a', '/var/spool/postfix/tdc']).trim()).toBe('tdc-milter:postfix 750');
    expect(run(BIN, ['check-config', '--config', conf]).status).toBe(0);
  }, 600_000);

  it('dpkg -r keeps only the conffile; dpkg -P leaves nothing but the system user', async () => {
    expect(files.length).toBeGreaterThan(0);
    await dpkg(['-r', 'tdc-milter']);
    expect(run('dpkg-query', ['-W', '-f=${Status}', 'tdc-milter']).stdout).toBe('deinstall ok config-files');
    const left = files.filter((f) => fs.existsSync(f) && !fs.statSync(f).isDirectory());
    expect(left).toEqual(['/etc/tdc-milter/milter.conf']);
    expect(fs.existsSync('/var/spool/postfix/tdc')).toBe(false);

    await dpkg(['-P', 'tdc-milter']);
    expect(run('dpkg-query', ['-W', '-f=${Status}', 'tdc-milter']).stdout).toBe('');
    const ours = (f: string): boolean => /tdc-milter|milter\.conf/.test(f);
    expect(files.filter((f) => ours(f) && fs.existsSync(f))).toEqual([]);
    for (const dir of ['/etc/tdc-milter', '/var/spool/postfix/tdc', '/var/log/tdc-milter', '/usr/share/doc/tdc-milter']) {
      expect({ dir, exists: fs.existsSync(dir) }).toEqual({ dir, exists: false });
    }
    expect(enabledLinks()).toEqual([]);
    // Debian practice keeps a removed package's system user: its uid may still own files (README says so).
    expect(run('getent', ['passwd', 'tdc-milter']).status).toBe(0);
  }, 600_000);
});
