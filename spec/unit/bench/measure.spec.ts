/**
 * The benchmark's pure helpers: /proc stat parsing, Postfix CPU deltas, Prometheus histogram
 * quantiles, and the copy-lag readers for the daemon's log and Postfix's maillog.
 */
import {
  histogramDelta, histogramQuantile, median, parseHistogram, parseProcStat, postfixCpuDelta, quantile,
} from '../../../bench/measure';
import { daemonCopyLags, metricValue, postfixCopyLags } from '../../../bench/scenarios';

const HIST = (c: number[]): string =>
  [
    '# HELP tdc_eob_duration_seconds x',
    ...[0.0005, 0.001, 0.0025].map((le, i) => `tdc_eob_duration_seconds_bucket{le="${le}"} ${c[i]}`),
    `tdc_eob_duration_seconds_bucket{le="+Inf"} ${c[3]}`,
    `tdc_eob_duration_seconds_sum 0.1`,
    `tdc_eob_duration_seconds_count ${c[3]}`,
  ].join('\n');

describe('bench measure helpers', () => {
  it('parses utime/stime/cutime/cstime even with spaces and parentheses in comm', () => {
    const s = parseProcStat('123 (a (b) c) S 1 2 3 4 5 6 7 8 9 10 11 22 33 44 0 20');
    expect(s).toEqual({ comm: 'a (b) c', utime: 11, stime: 22, cutime: 33, cstime: 44 });
  });

  it('splits Postfix CPU by daemon and counts exited daemons from the master', () => {
    const st = (comm: string, u: number, cu = 0) => ({ comm, utime: u, stime: 0, cutime: cu, cstime: 0 });
    const before = { byPid: new Map([[1, st('master', 10, 100)], [2, st('smtpd', 50)]]), master: st('master', 10, 100) };
    const after = {
      byPid: new Map([[1, st('master', 12, 150)], [2, st('smtpd', 80)], [3, st('cleanup', 40)]]),
      master: st('master', 12, 150),
    };
    expect(postfixCpuDelta(before, after)).toEqual({ master: 0.02, smtpd: 0.3, cleanup: 0.4, exited: 0.5 });
  });

  it('interpolates quantiles inside histogram buckets, on the difference of two scrapes', () => {
    const h = histogramDelta(parseHistogram(HIST([10, 10, 10, 10]), 'tdc_eob_duration_seconds'),
      parseHistogram(HIST([60, 110, 110, 110]), 'tdc_eob_duration_seconds'));
    expect(h.count).toBe(100);
    expect(histogramQuantile(h, 0.5)).toBeCloseTo(0.0005, 6);
    expect(histogramQuantile(h, 0.99)).toBeCloseTo(0.0005 + 0.0005 * (49 / 50), 6);
    expect(Number.isNaN(histogramQuantile({ buckets: [], count: 0 }, 0.5))).toBe(true);
  });

  it('takes nearest-rank quantiles and medians of samples', () => {
    expect(quantile([5, 1, 3, 2, 4], 0.5)).toBe(3);
    expect(quantile([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 0.99)).toBe(10);
    expect(median([3, 1, 2, 10])).toBe(2.5);
    expect(Number.isNaN(median([]))).toBe(true);
  });

  it('reads copy lags from the daemon log and from Postfix delay= fields', () => {
    const log = [
      "2026-11-23T21:00:00.100Z Info: TDC: MID 101 with Message-ID '<a@b>' enqueued for forwarding to Cisco Secure Email Threat Defense to the message intake address j@x",
      "2026-11-23T21:00:00.200Z Info: TDC: MID 102 with Message-ID '<c@d>' enqueued for forwarding to Cisco Secure Email Threat Defense to the message intake address j@x",
      "2026-11-23T21:00:00.350Z Info: TDC: Message done DCID 1 MID 101 to RID [0] [('250 ok')]",
      '2026-11-23T21:00:00.350Z Info: TDC: MID 101 successfully delivered for scanning with Cisco Secure Email Threat Defense.',
      '2026-11-23T21:00:01.200Z Info: TDC: MID 102 successfully delivered for scanning with Cisco Secure Email Threat Defense.',
    ].join('\n');
    expect(daemonCopyLags(log)).toEqual([250, 1000]);
    const json = [
      '{"time":"2026-11-23T21:00:00.100Z","level":"info","message":"TDC: MID 7 with Message-ID \'<a@b>\' enqueued for forwarding to Cisco Secure Email Threat Defense to the message intake address j@x"}',
      'not json {',
      '{"time":"2026-11-23T21:00:00.420Z","level":"info","message":"TDC: MID 7 successfully delivered for scanning with Cisco Secure Email Threat Defense."}',
    ].join('\n');
    expect(daemonCopyLags(json)).toEqual([320]);
    const maillog = [
      'Nov 23 21:00:00 mx postfix/smtp[9]: A1: to=<journal@intake.bench>, relay=127.0.0.1[127.0.0.1]:4000, delay=0.35, status=sent (250)',
      'Nov 23 21:00:00 mx postfix/discard[9]: A1: to=<1rcpt@example.net>, relay=none, delay=0.01, status=sent (bench)',
      'Nov 23 21:00:00 mx postfix/smtp[9]: A2: to=<journal@intake.bench>, relay=127.0.0.1[127.0.0.1]:4000, delay=1.2, status=deferred',
    ].join('\n');
    expect(postfixCopyLags(maillog, 4000)).toEqual([350]);
  });

  it('reads whole-queue metric values', () => {
    const text = 'tdc_dropped_total{destination="the.tdc.queue"} 7\ntdc_dropped_total{destination="x.test"} 3\ntdc_queue_bytes 42';
    expect(metricValue(text, 'tdc_dropped_total')).toBe(7);
    expect(metricValue(text, 'tdc_queue_bytes')).toBe(42);
    expect(Number.isNaN(metricValue(text, 'nope'))).toBe(true);
    const byReason = 'tdc_dropped_total{destination="the.tdc.queue",reason="queue_full"} 5\n' +
      'tdc_dropped_total{destination="the.tdc.queue",reason="too_old"} 2\ntdc_dropped_total{destination="x.test",reason="too_old"} 2';
    expect(metricValue(byReason, 'tdc_dropped_total')).toBe(7);
  });
});
