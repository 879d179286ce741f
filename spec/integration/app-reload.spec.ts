/**
 * TdcApp.reloadFrom, in process on loopback: whatever goes wrong while reloading (a refused file, an
 * exception thrown by the loader or while applying) is one `reload refused: …; old settings kept` line,
 * the old settings stay, and the two reload metrics say what happened, on the injected clock.
 */
import { TdcApp } from '../../lib/app';
import { parseConfigText, type Config, type ConfigResult } from '../../lib/config';
import { ManualClock } from '../../lib/util/clock';
import { MemoryLogger } from '../../lib/util/logger';

function parse(text: string): Config {
  const r = parseConfigText(text, 'reload.conf', { hostname: 'gw.example.test' });
  if (!r.ok) throw new Error(r.errors.join('\n'));
  return r.config;
}

const BASE = '[milter]\nlisten = inet:127.0.0.1:0\nstatus_listen = no\n\n[tdc]\nretry_delay = 1s\n';

function metric(text: string, name: string): number | undefined {
  const m = new RegExp(`^${name} (\\S+)$`, 'm').exec(text);
  return m ? Number(m[1]) : undefined;
}

describe('TdcApp.reloadFrom', () => {
  let app: TdcApp;
  const logger = new MemoryLogger();
  const clock = new ManualClock(Date.UTC(2026, 10, 30, 12, 0, 0));

  beforeAll(async () => {
    app = await TdcApp.start(parse(BASE), { logger, clock });
  });
  afterAll(async () => {
    await app.stop(0);
  });

  const metrics = async () => app.metrics.registry.metrics();

  it('starts as a successful load at the start time', async () => {
    const text = await metrics();
    expect(metric(text, 'tdc_config_last_reload_successful')).toBe(1);
    expect(metric(text, 'tdc_config_last_reload_success_timestamp_seconds')).toBe(Date.UTC(2026, 10, 30, 12, 0, 0) / 1000);
  });

  it.each<[string, () => ConfigResult, RegExp]>([
    ['a refused file', () => ({ ok: false, errors: ['reload.conf:6: retry_delay: expected a duration, got "soon"', 'reload.conf:7: x: y'] }),
      /^reload refused: reload\.conf:6: retry_delay: expected a duration, got "soon"; reload\.conf:7: x: y; old settings kept$/],
    ['a loader that throws', () => { throw new Error('EACCES: permission denied'); },
      /^reload refused: EACCES: permission denied; old settings kept$/],
  ])('%s: one line, old settings kept, metric 0', async (_what, load, line) => {
    const before = app.config;
    const lines = logger.lines.length;
    clock.advance(1000);
    expect(app.reloadFrom(load)).toBe(false);
    expect(logger.lines.slice(lines).map((l) => [l.level, l.message])).toEqual([['error', expect.stringMatching(line)]]);
    expect(app.config).toBe(before);
    const text = await metrics();
    expect(metric(text, 'tdc_config_last_reload_successful')).toBe(0);
    expect(metric(text, 'tdc_config_last_reload_success_timestamp_seconds')).toBe(Date.UTC(2026, 10, 30, 12, 0, 0) / 1000);
  });

  it('an error thrown while applying loaded settings is refused the same way', () => {
    const before = app.config;
    const lines = logger.lines.length;
    // Settings that throw as soon as the app reads them (whatever part of the app reads them first).
    const tdc = Object.defineProperty({ ...before.tdc }, 'relay', { get: () => { throw new Error('relay exploded'); } });
    const broken = { ...before, tdc } as Config;
    expect(app.reloadFrom(() => ({ ok: true, config: broken }))).toBe(false);
    expect(logger.lines.slice(lines).map((l) => l.message)).toEqual(['reload refused: relay exploded; old settings kept']);
    expect(app.config).toBe(before);
  });

  it('a good file afterwards: applied, metric 1 with the time of the reload', async () => {
    clock.advance(5000);
    const next = parse(BASE.replace('retry_delay = 1s', 'retry_delay = 2s'));
    expect(app.reloadFrom(() => ({ ok: true, config: next }))).toBe(true);
    expect(app.config).toBe(next);
    expect(logger.matching(/configuration reloaded/)).toHaveLength(1);
    const text = await metrics();
    expect(metric(text, 'tdc_config_last_reload_successful')).toBe(1);
    expect(metric(text, 'tdc_config_last_reload_success_timestamp_seconds')).toBe(clock.now() / 1000);
  });
});
