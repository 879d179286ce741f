/**
 * milter.conf.example documents the schema: it parses cleanly, names every schema key and no other;
 * the embedded default config starts journaling-off on 127.0.0.1:8894; `describeEffective` output is
 * itself a valid milter.conf meaning the same settings.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { GATEWAY_FS } from '../../support/gateway-fs';
import { DEFAULT_CONFIG_TEXT, SCHEMA, describeEffective, loadConfigFile, parseConfigText, type Config } from '../../../lib/config';

const EXAMPLE = path.resolve(__dirname, '../../../milter.conf.example');

function withoutSources(c: Config): Omit<Config, 'sources'> {
  const { sources: _ignored, ...rest } = c;
  return rest;
}

describe('milter.conf.example', () => {
  const text = fs.readFileSync(EXAMPLE, 'utf8');

  it('is valid', () => {
    const r = loadConfigFile(EXAMPLE, { hostname: 'gw1.example.org' });
    expect(r.ok ? [] : r.errors).toEqual([]);
  });

  it('sets every schema key (in its section) and no key the schema lacks', () => {
    const seen = new Set<string>();
    let section = '';
    for (const line of text.split('\n')) {
      const header = /^\[(\w+)/.exec(line);
      if (header) section = header[1]!;
      const kv = /^([a-z_]+)\s*=/.exec(line);
      if (kv) {
        const schemaSection = section === 'group' || section === 'machine' ? 'tdc' : section;
        expect(SCHEMA.some((k) => k.section === schemaSection && k.key === kv[1])).toBe(true);
        seen.add(`${schemaSection}.${kv[1]}`);
      }
    }
    expect([...seen].sort()).toEqual(SCHEMA.map((k) => `${k.section}.${k.key}`).sort());
  });

  it('shows the default of every [milter], [tdc] and [direction] key (intake_address aside) and comments each', () => {
    for (const spec of SCHEMA.filter((k) => k.section !== 'policy' && k.key !== 'intake_address')) {
      const line = text.split('\n').find((l) => new RegExp(`^${spec.key}\\s*=`).test(l));
      expect([spec.key, line?.replace(/\s+#.*$/, '').replace(/^[a-z_]+\s*=\s*/, '')]).toEqual([spec.key, spec.default]);
      expect([spec.key, /\s#\s\S/.test(line!)]).toEqual([spec.key, true]);
    }
  });
});

describe('DEFAULT_CONFIG_TEXT', () => {
  it('starts the milter on inet:127.0.0.1:8894 with journaling off', () => {
    const r = parseConfigText(DEFAULT_CONFIG_TEXT, '(embedded default)', { hostname: 'h.example' });
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(r.config.milter.listen).toEqual({ kind: 'inet', host: '127.0.0.1', port: 8894 });
    expect(r.config.tdc.enabled).toBe(false);
    expect(r.config.tdc.intakeAddress).toBe('');
  });
});

describe('describeEffective', () => {
  it('prints every key with its layer and parses back to the same settings', () => {
    const first = loadConfigFile(path.resolve(__dirname, '../../fixtures/config/valid/full.conf'), { hostname: 'h', io: GATEWAY_FS });
    if (!first.ok) throw new Error(first.errors.join('\n'));
    const out = describeEffective(first.config);
    for (const spec of SCHEMA.filter((k) => k.section !== 'policy')) expect(out).toMatch(new RegExp(`^${spec.key} = .*# `, 'm'));
    expect(out).toMatch(/^max_connections = 4\s+# group emea \(full\.conf:50\)$/m);
    expect(out).toMatch(/^retry_delay = 1500ms\s+# tdc \(full\.conf:20\)$/m);
    expect(out).toMatch(/^socket_mode = 0640\s+# milter/m);
    expect(out).toMatch(/^\[policy finance\]\s+# full\.conf:36$/m);
    const again = parseConfigText(out, 'described.conf', { hostname: 'h', io: GATEWAY_FS });
    if (!again.ok) throw new Error(again.errors.join('\n'));
    expect(withoutSources(again.config)).toEqual(withoutSources(first.config));
  });

  it('shows a default-off journaling and an implicit DEFAULT policy', () => {
    const r = parseConfigText(DEFAULT_CONFIG_TEXT, 'x', { hostname: 'h.example' });
    const out = r.ok ? describeEffective(r.config) : '';
    expect(out).toMatch(/^enabled = no\s+# default \(no intake address configured\)$/m);
    expect(out).toMatch(/^\[policy DEFAULT\]\s+# implicit$/m);
    expect(out).toMatch(/^max_queue_age = 120s\s+# default$/m);
  });
});
