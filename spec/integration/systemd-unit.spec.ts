/**
 * examples/tdc-milter.service as systemd itself reads it: `systemd-analyze verify` must accept it with
 * no warning at all, `systemd-analyze security --offline` must rate it OK, and the settings admins rely
 * on (user, group, socket directory, check-config, reload, drain time, syslog) must be there.
 * Needs systemd-analyze from the Debian package systemd (.ci/run installs it).
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { defaultValue, findKey } from '../../lib/config/schema';

const UNIT = path.resolve(__dirname, '../../examples/tdc-milter.service');
const SOCKET_UNIT = path.resolve(__dirname, '../../examples/tdc-milter.socket');
const BINARY = '/usr/bin/tdc-milter';

/** The daemon drains queued copies for up to this long on SIGTERM: [milter] drain_time's default. */
const DRAIN_SECONDS = (defaultValue(findKey('milter', 'drain_time')!) as number) / 1000;

function analyze(args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync('systemd-analyze', args, { encoding: 'utf8', timeout: 20_000 });
  if (r.error) throw r.error;
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** Values of `Key=` lines in the unit (comments and continuation-free, as ours is). */
function settings(text: string, key: string): string[] {
  return text
    .split('\n')
    .filter((l) => l.startsWith(`${key}=`))
    .map((l) => l.slice(key.length + 1));
}

describe('examples/tdc-milter.service', () => {
  let dir: string;
  let unitCopy: string;
  const text = fs.readFileSync(UNIT, 'utf8');

  beforeAll(() => {
    const probe = spawnSync('systemd-analyze', ['--version'], { encoding: 'utf8' });
    if (probe.error || probe.status !== 0) {
      throw new Error(
        'systemd-analyze is not installed (or does not run): install the Debian package "systemd" ' +
          '(apt-get install systemd; bash .ci/run does this) to check examples/tdc-milter.service',
      );
    }
  });

  beforeEach(() => {
    // verify checks that every Exec*= binary exists and is executable. /usr/bin/tdc-milter is only there
    // once the package is installed, so verify a copy of the unit in which that one path (and nothing
    // else) points at a stand-in executable. /usr/bin/install and /bin/kill are real on any Debian.
    // Using --root= instead would need a whole fake root (sysinit.target, /bin/kill, …).
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tdc-unit-'));
    const standIn = path.join(dir, 'tdc-milter');
    fs.writeFileSync(standIn, '#!/bin/sh\nexit 0\n', { mode: 0o755 });
    unitCopy = path.join(dir, 'tdc-milter.service');
    fs.writeFileSync(unitCopy, text.split(BINARY).join(standIn));
    // The service requires its socket unit; verify finds it next to the service.
    fs.copyFileSync(SOCKET_UNIT, path.join(dir, 'tdc-milter.socket'));
  });

  afterEach(() => {
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('passes systemd-analyze verify without a single warning', () => {
    expect(text.split(BINARY).length - 1).toBe(3); // check-config (start and reload) and run: all replaced
    // --man=no: do not look up man pages named in Documentation= (there are none, but be explicit).
    const r = analyze(['verify', '--man=no', unitCopy]);
    // Unknown keys and unparsable values are only warnings (exit 0), so stderr must be empty too.
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
  });

  it('is rated OK by systemd-analyze security', () => {
    const r = analyze(['security', '--offline=yes', '--man=no', unitCopy]);
    expect(r.status).toBe(0);
    const m = /Overall exposure level for tdc-milter\.service: (\d+(?:\.\d+)?) (\w+)/.exec(r.stdout);
    expect(m).not.toBeNull();
    expect(Number(m![1])).toBeLessThanOrEqual(2.5);
  });

  it('verify would catch a broken unit (the check can fail)', () => {
    fs.writeFileSync(unitCopy, fs.readFileSync(unitCopy, 'utf8').replace('Type=notify', 'Type=notifi'));
    expect(analyze(['verify', '--man=no', unitCopy]).stderr).toMatch(/Failed to parse service type/);
  });

  it('runs as tdc-milter:postfix with the socket directory in the Postfix spool', () => {
    expect(settings(text, 'Type')).toEqual(['notify']);
    expect(settings(text, 'NotifyAccess')).toEqual(['all']); // systemd-notify, a child, reports readiness
    expect(settings(text, 'User')).toEqual(['tdc-milter']);
    expect(settings(text, 'Group')).toEqual(['postfix']);
    expect(settings(text, 'ExecStartPre')).toEqual([
      '+/usr/bin/install -d -o tdc-milter -g postfix -m 0750 /var/spool/postfix/tdc',
      '/usr/bin/tdc-milter check-config --config /etc/tdc-milter/milter.conf',
    ]);
    expect(settings(text, 'ExecStart')).toEqual(['/usr/bin/tdc-milter run --config /etc/tdc-milter/milter.conf']);
    expect(settings(text, 'ReadWritePaths')).toEqual(['/var/spool/postfix/tdc']);
  });

  it('reloads with SIGHUP, logs as tdc-milter to facility mail, restarts on failure', () => {
    // check-config first: a file the daemon would refuse makes `systemctl reload` fail, and no SIGHUP is sent.
    expect(settings(text, 'ExecReload')).toEqual([`${BINARY} check-config --config /etc/tdc-milter/milter.conf`, '/bin/kill -HUP $MAINPID']);
    expect(settings(text, 'SyslogIdentifier')).toEqual(['tdc-milter']);
    expect(settings(text, 'SyslogFacility')).toEqual(['mail']);
    expect(settings(text, 'Restart')).toEqual(['on-failure']);
  });

  it('gives the SIGTERM drain time before SIGKILL', () => {
    const [stop] = settings(text, 'TimeoutStopSec');
    expect(stop).toMatch(/^\d+s$/);
    expect(parseInt(stop!, 10)).toBeGreaterThan(DRAIN_SECONDS);
  });

  it('is hardened', () => {
    for (const [key, value] of [
      ['NoNewPrivileges', 'yes'], ['ProtectSystem', 'strict'], ['ProtectHome', 'yes'], ['PrivateTmp', 'yes'],
      ['PrivateDevices', 'yes'], ['CapabilityBoundingSet', ''], ['RestrictAddressFamilies', 'AF_UNIX AF_INET AF_INET6'],
    ]) {
      expect([key, settings(text, key!)]).toEqual([key, [value]]);
    }
    // Node's JIT needs writable+executable memory: this setting would kill the daemon at start.
    expect(settings(text, 'MemoryDenyWriteExecute')).toEqual([]);
  });

  it('holds its socket in tdc-milter.socket (socket activation), on the default listen address', () => {
    expect(settings(text, 'Requires')).toEqual(['tdc-milter.socket']);
    expect(settings(text, 'After')).toEqual(['network.target tdc-milter.socket']);
    expect(settings(text, 'Also')).toEqual(['tdc-milter.socket']);
    const socket = fs.readFileSync(SOCKET_UNIT, 'utf8');
    expect(defaultValue(findKey('milter', 'listen')!)).toEqual({ kind: 'inet', host: '127.0.0.1', port: 8894 });
    expect(settings(socket, 'ListenStream')).toEqual(['127.0.0.1:8894']);
    // The daemon picks the fd named "milter" when systemd passes several.
    expect(settings(socket, 'FileDescriptorName')).toEqual(['milter']);
    const copy = path.join(dir, 'tdc-milter.socket');
    const r = analyze(['verify', '--man=no', copy]);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
  });
});
