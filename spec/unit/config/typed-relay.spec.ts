/**
 * `relay` is parsed once, by the loader, into the RelaySpec the forwarder, the router and check-intake
 * take; `tdc-milter config` prints it back as file text that loads to the same value (brackets kept);
 * and no runtime module parses it again.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describeEffective, parseConfigText, type Config } from '../../../lib/config';
import { forwarderOptionsFrom } from '../../../lib/app';
import { checkOptionsFrom, parseCheckArgs } from '../../../lib/cli/check-intake';

function text(relay: string | undefined): string {
  return `[tdc]\nintake_address = journal@intake.example\n${relay === undefined ? '' : `relay = ${relay}\n`}`;
}

function load(relay: string | undefined): Config {
  const r = parseConfigText(text(relay), 'milter.conf', { hostname: 'gw1.example.org' });
  if (!r.ok) throw new Error(r.errors.join('\n'));
  return r.config;
}

describe('relay parsed at load time', () => {
  it.each([
    ['[192.0.2.25]:2525', { host: '192.0.2.25', port: 2525, bracketed: true }, '[192.0.2.25]:2525'],
    ['[192.0.2.25]', { host: '192.0.2.25', port: 25, bracketed: true }, '[192.0.2.25]:25'],
    ['[2001:DB8::1]:26', { host: '2001:DB8::1', port: 26, bracketed: true }, '[2001:DB8::1]:26'],
    ['[mail.example.com]:587', { host: 'mail.example.com', port: 587, bracketed: true }, '[mail.example.com]:587'],
    ['[mail.example.com]', { host: 'mail.example.com', port: 25, bracketed: true }, '[mail.example.com]:25'],
    ['mail.example.com:587', { host: 'mail.example.com', port: 587, bracketed: false }, 'mail.example.com:587'],
    ['mail.example.com', { host: 'mail.example.com', port: 25, bracketed: false }, 'mail.example.com:25'],
    ['192.0.2.7:2525', { host: '192.0.2.7', port: 2525, bracketed: false }, '192.0.2.7:2525'],
  ])('%s loads as the RelaySpec and prints back as %s, which loads to the same value', (written, spec, printed) => {
    const c = load(written);
    expect(c.tdc.relay).toEqual(spec);
    const out = describeEffective(c);
    expect(out).toContain(`\nrelay = ${printed} `);
    expect(load(printed).tdc.relay).toEqual(spec);
    expect(parseConfigText(out, 'again.conf', { hostname: 'gw1.example.org' })).toMatchObject({ ok: true, config: { tdc: { relay: spec } } });
  });

  it('unset (or empty) is undefined: the MX of the intake domain', () => {
    expect(load(undefined).tdc.relay).toBeUndefined();
    expect(load('').tdc.relay).toBeUndefined();
    expect(describeEffective(load(undefined))).toMatch(/^relay = \s*#/m);
  });

  it.each(['a:b:c', 'host:0', 'host:70000', '[1.2.3.4]:x', 'ho st', '2001:db8::1', '[]:25'])('refuses %j with what a relay looks like', (bad) => {
    const r = parseConfigText(text(bad), 'milter.conf', { hostname: 'gw1.example.org' });
    expect(r.ok).toBe(false);
    const errors = r.ok ? [] : r.errors;
    expect(errors).toEqual([expect.stringContaining(`relay: expected host, host:port, [ip] or [ip]:port, got ${JSON.stringify(bad)}`)]);
  });

  it('the forwarder and check-intake get the loaded RelaySpec as it is', () => {
    const c = load('[192.0.2.25]:2525');
    expect(forwarderOptionsFrom(c).relay).toBe(c.tdc.relay);
    expect(checkOptionsFrom(c, parseCheckArgs([])).relay).toBe(c.tdc.relay);
    expect(forwarderOptionsFrom(load(undefined)).relay).toBeUndefined();
    expect(checkOptionsFrom(load(undefined), parseCheckArgs([])).relay).toBeUndefined();
  });

  it('the forwarder and check-intake never parse the relay themselves', () => {
    const lib = path.resolve(__dirname, '../../../lib');
    const runtime = [...fs.readdirSync(path.join(lib, 'forwarder')).map((f) => path.join('forwarder', f)), 'cli/check-intake.ts', 'app.ts']
      .filter((f) => f.endsWith('.ts'));
    expect(runtime.length).toBeGreaterThan(5);
    const parsing = runtime.filter((f) => /\bparseRelay\b/.test(fs.readFileSync(path.join(lib, f), 'utf8')));
    expect(parsing).toEqual([]);
  });
});
