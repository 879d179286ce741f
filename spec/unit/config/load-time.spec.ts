/**
 * What milter.conf reads and checks at load time (lib/config/load-time): the CA bundle (readable, PEM,
 * every certificate parsable) and a unix socket's directory, through an injected ConfigIo.
 */
import { parseConfigText } from '../../../lib/config';
import { checkListenDirectory, checkLogFileDirectory, checkSocketGroup, readCaBundle, type ConfigIo } from '../../../lib/config/load-time';
import { TEST_CA_PEM } from '../../support/gateway-fs';

function io(files: Record<string, string>, dirs: string[] = []): ConfigIo {
  return {
    readFile: (f) => {
      const t = files[f];
      if (t === undefined) throw Object.assign(new Error(`ENOENT: no such file or directory, open '${f}'`), { code: 'ENOENT' });
      return t;
    },
    isDirectory: (d) => dirs.includes(d),
  };
}

describe('readCaBundle', () => {
  it('returns the PEM text of a good bundle (two certificates and text around them)', () => {
    const pem = `# our intake's CA\n${TEST_CA_PEM}\n${TEST_CA_PEM}`;
    expect(readCaBundle('/etc/ca.pem', io({ '/etc/ca.pem': pem }))).toEqual({ ok: true, pem });
  });

  it.each<[string, string, RegExp]>([
    ['missing', '/nope.pem', /^expected a readable PEM CA bundle, got "\/nope\.pem" \(ENOENT: no such file/],
    ['empty', '/empty.pem', /^expected a PEM CA bundle with at least one certificate, got "\/empty\.pem" \(no BEGIN CERTIFICATE block\)$/],
    ['a key, not a certificate', '/key.pem', /no BEGIN CERTIFICATE block/],
    ['a broken second certificate', '/broken.pem', /^expected a PEM CA bundle, got "\/broken\.pem" \(certificate 2 of 2: /],
  ])('refuses a %s file', (_what, file, message) => {
    const files = {
      '/empty.pem': '',
      '/key.pem': '-----BEGIN PRIVATE KEY-----\nMIIB\n-----END PRIVATE KEY-----\n',
      '/broken.pem': `${TEST_CA_PEM}\n-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydGlmaWNhdGU=\n-----END CERTIFICATE-----\n`,
    };
    const r = readCaBundle(file, io(files));
    expect(r.ok).toBe(false);
    expect(r.ok ? '' : r.message).toMatch(message);
  });
});

describe('checkListenDirectory', () => {
  const fs = io({}, ['/var/spool/postfix/tdc']);
  it('accepts inet addresses and a socket in an existing directory', () => {
    expect(checkListenDirectory({ kind: 'inet', host: '127.0.0.1', port: 8894 }, 'inet:8894@127.0.0.1', fs)).toBeUndefined();
    expect(checkListenDirectory({ kind: 'unix', path: '/var/spool/postfix/tdc/tdc.sock' }, 'local:/var/spool/postfix/tdc/tdc.sock', fs)).toBeUndefined();
  });
  it('refuses a socket whose directory does not exist, quoting the value as written', () => {
    expect(checkListenDirectory({ kind: 'unix', path: '/run/tdc/tdc.sock' }, 'local:/run/tdc/tdc.sock', fs))
      .toBe('expected a unix socket in an existing directory, got "local:/run/tdc/tdc.sock" (no directory /run/tdc)');
  });
});

describe('checkSocketGroup', () => {
  const unix = { kind: 'unix', path: '/var/spool/postfix/tdc/tdc.sock' } as const;
  const fs = io({ '/etc/group': 'root:x:0:\npostfix:x:114:\nbroken:x:\n' });
  it('accepts a group of /etc/group, a numeric gid, and anything for an inet listener (no socket to chown)', () => {
    expect(checkSocketGroup(unix, 'postfix', fs)).toBeUndefined();
    expect(checkSocketGroup(unix, '4242', fs)).toBeUndefined();
    expect(checkSocketGroup({ kind: 'inet', host: '127.0.0.1', port: 1 }, 'nosuch', fs)).toBeUndefined();
  });
  it.each(['nosuch', 'broken', 'postfi'])('refuses %j', (group) => {
    expect(checkSocketGroup(unix, group, fs)).toBe(`expected a group of /etc/group or a numeric gid, got "${group}"`);
  });
  it('says when /etc/group cannot be read', () => {
    expect(checkSocketGroup(unix, 'postfix', io({}))).toMatch(/^expected a group of \/etc\/group or a numeric gid, got "postfix" \(cannot read \/etc\/group: ENOENT/);
  });
});

describe('checkLogFileDirectory', () => {
  it('accepts a log file in an existing directory, refuses one whose directory does not exist', () => {
    expect(checkLogFileDirectory('/var/log/tdc-milter/tdc.log', io({}, ['/var/log/tdc-milter']))).toBeUndefined();
    expect(checkLogFileDirectory('/var/log/tdc-milter/tdc.log', io({}, ['/var/log']))).toBe(
      'expected a file in an existing directory, got "/var/log/tdc-milter/tdc.log" (no directory /var/log/tdc-milter)');
  });

  it('check-config and the daemon refuse log_file in a missing directory with file:line (the daemon would log nothing)', () => {
    const text = '[milter]\nlisten = inet:127.0.0.1:8894\nlog_file = /var/log/tdc-milter/tdc.log\n';
    const bad = parseConfigText(text, 'm.conf', { hostname: 'h', io: io({}, ['/var/log']) });
    expect(bad).toEqual({ ok: false, errors: ['m.conf:3: log_file: expected a file in an existing directory, got "/var/log/tdc-milter/tdc.log" (no directory /var/log/tdc-milter)'] });
    expect(parseConfigText(text, 'm.conf', { hostname: 'h', io: io({}, ['/var/log/tdc-milter']) }).ok).toBe(true);
  });
});
