/**
 * The memory run: tdc-milter journals every message while the intake stalls (it takes the data and
 * never answers), so copies pile up in the.tdc.queue until queue_max_bytes and the rest are dropped.
 * Reports the daemon's peak RSS after each half of the load and the queue/drop counters.
 * Imports nothing from lib/.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { freePorts } from '../spec/support/mta-sandbox';
import { peakRss } from './measure';
import { startBenchPostfix } from './postfix-bench';
import { CA_FILE, httpGet, runSmtpSource, sleep, startDaemon, startIntake, stopChild } from './processes';
import { metricValue } from './scenarios';

export interface MemoryResult {
  messages: number;
  queueMaxBytes: number;
  peakRssMiB: number;
  rssAfterFirstHalfMiB: number;
  rssAfterSecondHalfMiB: number;
  queuedBytes: number;
  queuedCopies: number;
  dropped: number;
  enqueued: number;
  ingestMsgPerSec: number;
}

function currentRss(pid: number): number {
  try {
    const m = /^VmRSS:\s+(\d+) kB/m.exec(fs.readFileSync(`/proc/${pid}/status`, 'latin1'));
    return m === null ? 0 : Number(m[1]) * 1024;
  } catch {
    return 0;
  }
}

export async function runMemory(messages: number, workDir: string, queueMaxMiB = 100): Promise<MemoryResult> {
  const dir = fs.mkdtempSync(path.join(workDir, 'memory-'));
  const [milterPort, statusPort] = await freePorts(2);
  const intake = await startIntake('stall');
  const daemon = await startDaemon({
    dir, milterPort: milterPort!, statusPort: statusPort!, journaling: true, intakePort: intake.port,
    queueMaxBytes: `${queueMaxMiB}MiB`, extraTdc: ['queue_max_messages = 100000'],
  });
  const pf = await startBenchPostfix({ milter: `inet:127.0.0.1:${milterPort}`, caFile: CA_FILE });
  try {
    const half = Math.ceil(messages / 2);
    let wallMs = 0;
    const rssAfter: number[] = [];
    for (const n of [half, messages - half]) {
      const src = await runSmtpSource(pf.port, n, 1024 * 1024);
      wallMs += src.wallMs;
      for (let i = 0; i < 6000 && pf.queued() > 0; i++) await sleep(20);
      rssAfter.push(currentRss(daemon.pid));
    }
    const metrics = await httpGet(`${daemon.statusUrl}/metrics`);
    return {
      messages,
      queueMaxBytes: queueMaxMiB * 2 ** 20,
      peakRssMiB: peakRss(daemon.pid) / 2 ** 20,
      rssAfterFirstHalfMiB: rssAfter[0]! / 2 ** 20,
      rssAfterSecondHalfMiB: rssAfter[1]! / 2 ** 20,
      queuedBytes: metricValue(metrics, 'tdc_queue_bytes'),
      queuedCopies: metricValue(metrics, 'tdc_queue_active_recipients'),
      dropped: metricValue(metrics, 'tdc_dropped_total'),
      enqueued: metricValue(metrics, 'tdc_enqueued_total'),
      ingestMsgPerSec: messages / (wallMs / 1000),
    };
  } finally {
    await pf.stop().catch(() => undefined);
    await stopChild(daemon.child, 15_000);
    await intake.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
