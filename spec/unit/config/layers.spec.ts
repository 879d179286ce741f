/**
 * Layered [tdc] settings: [tdc] → [group NAME] (milter.group) → [machine NAME] (host name,
 * case-insensitive); the most specific wins, a machine-level enabled = no always wins, and
 * `sources` names the layer and line of every effective value.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseConfigText, type Config } from '../../../lib/config';
import { buildJournal } from '../../../lib/journal';
import { makeMessage } from '../../support/captured-message';

const TEXT = fs.readFileSync(path.resolve(__dirname, '../../fixtures/config/valid/layers.conf'), 'utf8');

function configFor(hostname: string, text = TEXT): Config {
  const r = parseConfigText(text, '/etc/tdc-milter/milter.conf', { hostname });
  if (!r.ok) throw new Error(r.errors.join('\n'));
  return r.config;
}

const withoutGroup = TEXT.replace('group = emea', '');

describe('layers', () => {
  it('a group member gets the group values over [tdc]', () => {
    const c = configFor('gw1.example.org');
    expect(c.milter.group).toBe('emea');
    expect([c.tdc.enabled, c.tdc.intakeAddress, c.tdc.maxConnections, c.tdc.connectTimeout]).toEqual([true, 'emea@intake.example', 6, 10_000]);
    expect(c.sources['tdc.intake_address']).toBe('group emea (milter.conf:11)');
    expect(c.sources['tdc.max_connections']).toBe('group emea (milter.conf:12)');
    expect(c.sources['tdc.connect_timeout']).toBe('tdc (milter.conf:8)');
    expect(c.sources['tdc.retry_delay']).toBe('default');
  });

  it('a machine section is the most specific layer, matched case-insensitively (trailing dot ignored)', () => {
    const c = configFor('GW2.Example.Org.');
    expect([c.tdc.intakeAddress, c.tdc.maxConnections]).toEqual(['emea@intake.example', 4]);
    expect(c.sources['tdc.max_connections']).toBe('machine gw2.example.org (milter.conf:19)');
  });

  it('a machine-level enabled = no wins over the group enable', () => {
    const c = configFor('gw3.example.org');
    expect(c.tdc.enabled).toBe(false);
    expect(c.sources['tdc.enabled']).toBe('machine gw3.example.org (milter.conf:22)');
    expect(c.tdc.intakeAddress).toBe('emea@intake.example');
  });

  it('without a group, only [tdc] and the machine layer apply', () => {
    const c = configFor('gw2.example.org', withoutGroup);
    expect([c.tdc.intakeAddress, c.tdc.maxConnections, c.tdc.enabled]).toEqual(['global@intake.example', 4, true]);
    expect(c.sources['tdc.enabled']).toBe('default');
  });

  it('another machine\'s section does not apply', () => {
    const c = configFor('gw9.example.org', withoutGroup);
    expect([c.tdc.intakeAddress, c.tdc.maxConnections]).toEqual(['global@intake.example', 10]);
  });

  it('the group is chosen by [milter] group, case-insensitively', () => {
    const c = configFor('gw9.example.org', TEXT.replace('group = emea', 'group = AMER'));
    expect(c.tdc.intakeAddress).toBe('amer@intake.example');
    expect(c.sources['tdc.intake_address']).toBe('group amer (milter.conf:16)');
  });

  it('a hostname in the file wins over the system host name', () => {
    const c = configFor('gw9.example.org', TEXT.replace('[milter]', '[milter]\nhostname = gw3.example.org'));
    expect(c.milter.hostname).toBe('gw3.example.org');
    expect(c.tdc.enabled).toBe(false);
  });

  it('cross-key checks see the layers of this machine', () => {
    const text = `${TEXT}\n[machine gw4.example.org]\nmin_connections = 8\n`;
    const bad = parseConfigText(text, 'milter.conf', { hostname: 'gw4.example.org' });
    expect(bad.ok ? [] : bad.errors).toEqual(['milter.conf:25: min_connections: expected at most max_connections (6), got 8']);
    // on another machine that section does not apply, and the file is fine
    expect(parseConfigText(text, 'milter.conf', { hostname: 'gw1.example.org' }).ok).toBe(true);
  });

  it('a group without an intake address while enabled is caught for the group\'s members', () => {
    const text = '[tdc]\nenabled = no\n[group g]\nenabled = yes\n';
    const r = parseConfigText(text, 'milter.conf', { hostname: 'h' });
    expect(r.ok ? [] : r.errors).toEqual([
      'milter.conf:4: enabled: expected [tdc] intake_address to be set because policy DEFAULT uses tdc = global (implicitly; add [policy DEFAULT] tdc = no to journal only custom policies), got none',
    ]);
  });
});

describe('hostname: what check-config accepts, the journal builder and EHLO can use', () => {
  const journalOf = (c: Config): Buffer => buildJournal({
    message: makeMessage(), intakeAddress: 'journal@intake.example', recipients: ['bob@example.org'], policies: ['DEFAULT'],
    hostname: c.milter.hostname, date: new Date(0), copyId: 'Q.1', remoteIpHeader: c.tdc.remoteIpHeader,
  });

  it('a fully qualified name with its root dot (in the file or from the system) is used without the dot', () => {
    const fromFile = configFor('h', '[milter]\nhostname = gw1.example.org.\n');
    expect(fromFile.milter.hostname).toBe('gw1.example.org');
    expect(journalOf(fromFile).toString('latin1')).toContain('Message-ID: <tdc.Q.1@gw1.example.org>\r\n');
    expect(configFor('gw2.example.org.', '[milter]\n').milter.hostname).toBe('gw2.example.org');
  });

  it('a system host name that is no host name is a problem for check-config and the daemon, not an error on every copy', () => {
    const r = parseConfigText('[milter]\nlisten = inet:127.0.0.1:8894\n', 'm.conf', { hostname: 'gw_1' });
    expect(r).toEqual({ ok: false, errors: ['m.conf:0: hostname: expected a host name such as gw1.example.org (the system host name is not one; set hostname), got "gw_1"'] });
  });
});
