/**
 * The first-run demo (`npm run demo`, demo/run.ts) as the README shows it: its main function runs
 * against real Postfix and a STARTTLS intake, ends with a status table of delivered copies, shows the
 * TDC: lines of every decision, and cleans up after itself.
 */
import * as fs from 'node:fs';
import { runDemo, demoPrerequisiteProblem } from '../../demo/run';

describe('npm run demo', () => {
  it('has what it needs on this machine (root, Postfix, unshare)', () => {
    expect(demoPrerequisiteProblem()).toBeUndefined();
  });

  it('sends mail across policies and ends with a status table showing the delivered copies', async () => {
    let shown = '';
    const r = await runDemo((t) => (shown += t));

    // 4 inbound messages: one global copy, one finance copy, none for lab, two copies for the
    // message to all three; 2 outbound messages: none. 8 originals (one per recipient).
    expect([r.intakeReceived, r.originalsDelivered]).toEqual([4, 8]);
    expect([r.status.queue.enqueued, r.status.queue.delivered, r.status.queue.dropped]).toEqual([4, 4, 0]);
    const row = r.statusTable.split('\n').find((l) => l.startsWith('the.tdc.queue '));
    // active rcpts, conn out, delivered, soft, hard, dropped, queue bytes
    const cells = row!.slice('the.tdc.queue'.length).trim().split(/\s+/).map(Number);
    expect([cells[0], cells[2], cells[3], cells[4], cells[5], cells[6]]).toEqual([0, 4, 0, 0, 0, 0]);
    expect(r.statusTable).toMatch(/^intake\.example\.net\s+0\s+\d+\s+2\s/m);
    expect(r.statusTable).toMatch(/^journal\.example\.org\s+0\s+\d+\s+2\s/m);

    // What a newcomer reads: every decision as a TDC: line, the table, one copy's history.
    const tdc = r.logLines.filter((l) => / TDC: /.test(l));
    expect(tdc.filter((l) => /not journaled for 1 recipient\(s\) of policy lab: tdc = no/.test(l))).toHaveLength(2);
    expect(tdc.filter((l) => /not journaled: outgoing/.test(l))).toHaveLength(2);
    expect(tdc.filter((l) => /Message done DCID \d+ MID \S+ to RID \[0\] \[\('250 /.test(l))).toHaveLength(4);
    expect(shown).toContain('== tdc-milter status\n');
    expect(shown).toContain(r.statusTable);
    expect(shown).toMatch(/== tdc-milter track \S+ .*\n(?:.*\n)*.*delivered\s+DCID \d+\s+250 /);
    expect(shown).toMatch(/== done: 8 originals delivered by Postfix, 4 journal copies accepted by the intake \(TLSv1\.[23]/);

    // Cleaned up: the throwaway Postfix directory is gone.
    expect(r.postfixDir).toMatch(/tdc-pf-/);
    expect(fs.existsSync(r.postfixDir)).toBe(false);
  }, 60_000);
});
