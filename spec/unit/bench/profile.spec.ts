/**
 * The bench's profile summary by job: which of the daemon's jobs a CPU sample is charged to, from
 * its stack, and the shares over a .cpuprofile file. Pure apart from a temporary file.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { jobOf, jobShares } from '../../../bench/profile';

const D = 'file:///x/dist/lib';

describe('jobOf', () => {
  it('charges a native socket write to the part that wrote it', () => {
    expect(jobOf(['writeBuffer@:0', `(anonymous)@${D}/milter/server.js:194`], 'writeBuffer')).toBe('milter side');
    expect(jobOf(['writev@:0', `#apply@${D}/smtp/connection.js:159`, `pump@${D}/forwarder/intake-pool.js:84`], 'writev')).toBe('SMTP client + TLS');
  });

  it('charges a log line wherever it was logged from, and the journal build inside the metrics timer to the build', () => {
    expect(jobOf([`format@${D}/util/logger.js:1`, `observe@${D}/status/mail-log.js:2`, `emit@${D}/forwarder/copy-queue.js:3`], 'format')).toBe('log lines');
    expect(jobOf([`buildJournalParts@${D}/journal/build.js:149`, `timeJournal@${D}/status/metrics.js:282`], 'buildJournalParts')).toBe('journal build + policy');
  });

  it('names GC and what is none of ours', () => {
    expect(jobOf(['(garbage collector)@:0'], '(garbage collector)')).toBe('GC');
    expect(jobOf(['listOnTimeout@node:internal/timers:1'], 'listOnTimeout')).toBe('other (node internals)');
  });
});

describe('jobShares', () => {
  it('shares of the busy samples, idle left out', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tdc-prof-'));
    const frame = (functionName: string, url = '') => ({ functionName, url, lineNumber: 0 });
    fs.writeFileSync(path.join(dir, 'a.cpuprofile'), JSON.stringify({
      startTime: 0, endTime: 1,
      nodes: [
        { id: 1, callFrame: frame('(root)'), children: [2, 3, 5] },
        { id: 2, callFrame: frame('(idle)'), hitCount: 6 },
        { id: 3, callFrame: frame('serve', `${D}/milter/server.js`), hitCount: 1, children: [4] },
        { id: 4, callFrame: frame('writeBuffer'), hitCount: 2 },
        { id: 5, callFrame: frame('info', `${D}/util/logger.js`), hitCount: 1 },
      ],
    }));
    expect(jobShares(dir)).toEqual({ busySamples: 4, jobs: [{ job: 'milter side', pct: 75 }, { job: 'log lines', pct: 25 }] });
  });
});
