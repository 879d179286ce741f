/**
 * The shipped monitoring examples: examples/prometheus-alerts.yml passes `promtool check rules`
 * and `promtool test rules` (spec/fixtures/prometheus/alerts.test.yml), and every metric that it
 * or examples/grafana-dashboard.json names is in the real /metrics of a running daemon.
 * promtool comes from Debian's `prometheus` package; without it the spec fails and says so.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { DaemonProcess, writeConfig } from '../support/daemon-process';
import { freePorts } from '../support/mta-sandbox';
import { httpGet } from '../support/http-get';

const ROOT = path.join(__dirname, '..', '..');
const ALERTS = path.join(ROOT, 'examples', 'prometheus-alerts.yml');
const ALERT_TESTS = path.join(ROOT, 'spec', 'fixtures', 'prometheus', 'alerts.test.yml');
const DASHBOARD = path.join(ROOT, 'examples', 'grafana-dashboard.json');

function promtool(args: string[]): { status: number | null; out: string } {
  const r = spawnSync('promtool', args, { encoding: 'utf8', timeout: 60_000 });
  if (r.error && (r.error as NodeJS.ErrnoException).code === 'ENOENT') {
    throw new Error('promtool is missing: install Debian\'s prometheus package (apt-get install --no-install-recommends prometheus); the alert rules are tested with it');
  }
  return { status: r.status, out: `${r.stdout}${r.stderr}` };
}

const PROMQL_WORDS = new Set(['by', 'without', 'on', 'ignoring', 'group_left', 'group_right', 'and', 'or', 'unless', 'bool', 'offset', 'inf', 'nan']);
/** Series Prometheus makes itself, not the daemon. */
const SYNTHETIC = new Set(['up']);

/** Metric names in a PromQL expression: identifiers that are not functions, keywords, labels or strings. */
function metricNames(expr: string): string[] {
  const s = expr
    .replace(/"(?:[^"\\]|\\.)*"/g, '""')             // strings
    .replace(/\{[^}]*\}/g, '')                         // label matchers
    .replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, '') // grouping label lists
    .replace(/\[[^\]]*\]/g, '')                        // range selectors ($__rate_interval, 10m)
    .replace(/\$\w+/g, '');                            // Grafana variables
  const names = new Set<string>();
  for (const m of s.matchAll(/([A-Za-z_:][\w:]*)(\s*\()?/g)) {
    if (m[2] !== undefined) continue; // a function call
    if (PROMQL_WORDS.has(m[1]!.toLowerCase())) continue;
    names.add(m[1]!);
  }
  return [...names];
}

/**
 * Series names the exposition declares (`# TYPE`; a labelled counter has no sample before its first
 * event) and carries; a histogram's as _bucket, _sum and _count.
 */
function exported(text: string): Set<string> {
  const out = new Set<string>();
  for (const line of text.split('\n')) {
    const t = /^# TYPE ([A-Za-z_:][\w:]*) (\w+)$/.exec(line);
    if (t) {
      out.add(t[1]!);
      if (t[2] === 'histogram') for (const suffix of ['_bucket', '_sum', '_count']) out.add(`${t[1]!}${suffix}`);
      continue;
    }
    const m = /^([A-Za-z_:][\w:]*)(\{| )/.exec(line);
    if (m) out.add(m[1]!);
  }
  return out;
}

describe('examples/prometheus-alerts.yml', () => {
  it('passes promtool check rules', () => {
    const r = promtool(['check', 'rules', ALERTS]);
    expect([r.status, r.out]).toEqual([0, expect.stringContaining('SUCCESS: 6 rules found')]);
  });

  it('passes promtool test rules: each alert fires on its condition and not otherwise', () => {
    const r = promtool(['test', 'rules', ALERT_TESTS]);
    expect([r.status, r.out]).toEqual([0, expect.stringContaining('SUCCESS')]);
  });

  it('has the six alerts the README names', () => {
    const names = [...fs.readFileSync(ALERTS, 'utf8').matchAll(/^\s+- alert: (\w+)$/gm)].map((m) => m[1]);
    expect(names).toEqual(['TdcMilterDown', 'TdcMilterCopiesDropped', 'TdcMilterCopiesHardBounced', 'TdcMilterNoDelivery', 'TdcMilterReloadFailed', 'TdcMilterQueueNearlyFull']);
  });
});

describe('metric names in the examples', () => {
  let daemon: DaemonProcess;
  let metrics: Set<string>;

  beforeAll(async () => {
    const [milterPort, statusPort] = await freePorts(2);
    daemon = await DaemonProcess.start(writeConfig(`[milter]\nlisten = inet:127.0.0.1:${milterPort}\nstatus_listen = 127.0.0.1:${statusPort}\n`));
    await daemon.waitForLine(/status endpoint on http/, 15_000);
    metrics = exported((await httpGet(statusPort!, '/metrics')).body);
  });

  afterAll(async () => {
    daemon?.signal('SIGTERM');
    await daemon?.exited;
  });

  it('the name extraction sees metrics and skips functions, labels, keywords and variables', () => {
    expect(metricNames('sum by (instance, le) (rate(tdc_x_bucket{destination="a b",instance=~"$instance"}[$__rate_interval])) / on (instance) tdc_y > 0.8 and time() - up'))
      .toEqual(['tdc_x_bucket', 'tdc_y', 'up']);
  });

  it('every expression of the dashboard names only metrics the daemon exports', () => {
    const dash = JSON.parse(fs.readFileSync(DASHBOARD, 'utf8')) as { panels: { title: string; targets?: { expr: string }[] }[] };
    const exprs = dash.panels.flatMap((p) => (p.targets ?? []).map((t) => ({ panel: p.title, expr: t.expr })));
    expect(exprs.length).toBeGreaterThan(15);
    const missing = exprs.flatMap(({ panel, expr }) => metricNames(expr).filter((n) => !metrics.has(n) && !SYNTHETIC.has(n)).map((n) => `${panel}: ${n}`));
    expect(missing).toEqual([]);
    const used = new Set(exprs.flatMap(({ expr }) => metricNames(expr)));
    for (const needed of ['tdc_queue_active_recipients', 'tdc_delivered_total', 'tdc_hard_bounced_total', 'tdc_dropped_total',
      'tdc_copy_lag_seconds_bucket', 'tdc_eob_duration_seconds_bucket', 'tdc_connections_out']) {
      expect([needed, used.has(needed)]).toEqual([needed, true]);
    }
  });

  it('every expression of the alert rules names only metrics the daemon exports', () => {
    const exprs = [...fs.readFileSync(ALERTS, 'utf8').matchAll(/expr: (?:\|\n((?:\s{10}.*\n)+)|(.*)\n)/g)].map((m) => m[1] ?? m[2]!);
    expect(exprs).toHaveLength(6);
    const missing = exprs.flatMap((e) => metricNames(e).filter((n) => !metrics.has(n) && !SYNTHETIC.has(n)));
    expect(missing).toEqual([]);
  });
});
