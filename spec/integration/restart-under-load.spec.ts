/**
 * Restart without a journaling gap: real Postfix (milter_default_action = accept), 500 messages over 100
 * SMTP sessions, the daemon restarted twice. With the socket held as systemd holds it every message is
 * journaled; with the daemon binding `listen` itself, the gap is counted and printed (README).
 */
import * as fs from 'node:fs';
import { ScriptedIntake, TEST_CA_FILE } from '../support/scripted-intake';
import { loopbackJournalConfig, writeConfig } from '../support/daemon-process';
import { freePort, sleep } from '../support/mta-sandbox';
import { startPostfix, type PostfixInstance } from '../support/postfix';
import { makeCorpus, runSessions, splitSessions, type SentMessage } from '../support/mail-corpus';
import { SocketHolder } from '../support/socket-holder';

const MESSAGES = 500;
const PER_SESSION = 5;
const PARALLEL = 10;

function configText(milterPort: number, intakePort: number): string {
  return loopbackJournalConfig(milterPort, intakePort, TEST_CA_FILE, {
    milter: ['drain_time = 20s'],
    tdc: ['max_queue_age = 60s', 'retry_delay = 1s', 'queue_max_messages = 5000', 'messages_per_connection = 100'],
  });
}

/** Postfix queue ids of the journal copies the intake accepted (from our X-TDC-Journal marker). */
function journaledQueueIds(intake: ScriptedIntake): Set<string> {
  const ids = new Set<string>();
  for (const r of intake.received) {
    const m = /^X-TDC-Journal: [^\r\n]*queue-id=([^;\s]+)/m.exec(r.raw.toString('latin1'));
    if (m) ids.add(m[1]!);
  }
  return ids;
}

async function until(probe: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!probe()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(100);
  }
}

interface Run {
  sent: SentMessage[];
  missing: string[];
  restartsDuringBurst: number;
  maillog: string;
  holder: SocketHolder;
  seconds: number;
}

async function burstWithTwoRestarts(activate: boolean, tag: string): Promise<Run> {
  const t0 = Date.now();
  const intake = await ScriptedIntake.start();
  const plainPort = await freePort();
  const conf = writeConfig(configText(plainPort, intake.port), 'tdc-restart-');
  let holder: SocketHolder | undefined;
  let pf: PostfixInstance | undefined;
  try {
    holder = await SocketHolder.start(conf, activate);
    const milterPort = activate ? holder.port : plainPort;
    pf = await startPostfix({ milters: `inet:127.0.0.1:${milterPort}`, milterDefaultAction: 'accept' });
    const corpus = makeCorpus({ count: MESSAGES, tag });
    const recipients = corpus.reduce((n, m) => n + m.to.length, 0);
    const plans = splitSessions(corpus, Array<number>(MESSAGES / PER_SESSION).fill(PER_SESSION)).map((messages) => ({ messages }));

    // Three parts of sessions, started one after the other; the daemon is restarted in the middle
    // of the first and of the second, so each restart meets sessions in progress and new ones.
    const parts = [40, 30, 30].map((n, i, all) => {
      const from = all.slice(0, i).reduce((a, b) => a + b, 0);
      return plans.slice(from, from + n);
    });
    const postfix = pf;
    const running: Promise<SentMessage[]>[] = [];
    let restartsDuringBurst = 0;
    let before = 0;
    for (const [i, part] of parts.entries()) {
      let done = false;
      running.push(runSessions(postfix.smtpPort, part, PARALLEL).finally(() => (done = true)));
      const partRecipients = part.reduce((n, p) => n + p.messages.reduce((k, m) => k + m.to.length, 0), 0);
      if (i < parts.length - 1) {
        const mark = before + partRecipients / 2;
        await until(() => done || postfix.delivered().length >= mark, 60_000, `half of part ${i + 1} delivered`);
        if (!done) restartsDuringBurst += 1;
        await holder.restartDaemon();
      }
      before += partRecipients;
    }
    const sent = (await Promise.all(running)).flat();
    await pf.waitForDelivered(recipients, 30_000);

    const qids = sent.map((m) => m.queueId);
    const missingNow = (): string[] => {
      const got = journaledQueueIds(intake);
      return qids.filter((q) => !got.has(q));
    };
    if (activate) {
      await until(() => missingNow().length === 0, 20_000, 'a journal copy of every message').catch(() => undefined);
    } else {
      // No copy is coming for the gap's messages: wait until the intake has been quiet for 2 s.
      let last = -1;
      await until(() => {
        const n = intake.received.length;
        const quiet = n === last;
        last = n;
        return quiet;
      }, 20_000, 'the intake to go quiet').catch(() => undefined);
      await sleep(1000);
    }
    return { sent, missing: missingNow(), restartsDuringBurst, maillog: pf.maillog(), holder, seconds: (Date.now() - t0) / 1000 };
  } finally {
    await holder?.stop();
    await pf?.stop();
    await intake.close();
    fs.rmSync(conf, { force: true });
  }
}

describe('restart under load through real Postfix (milter_default_action = accept)', () => {
  it('socket activation: 500 messages, two restarts, a journal copy of every message and every original delivered', async () => {
    const run = await burstWithTwoRestarts(true, 'restart-activated');
    console.log(`socket activation: ${run.sent.length} messages, ${run.restartsDuringBurst} restarts during the burst, ${run.missing.length} without a journal copy (${run.seconds.toFixed(1)} s)`);
    expect(run.sent).toHaveLength(MESSAGES);
    expect(run.restartsDuringBurst).toBe(2);
    expect(run.missing).toEqual([]);
    // Three daemons served the held socket and said so; Postfix never found the milter port closed.
    expect(run.holder.matching(/TDC: milter listening on inet:127\.0\.0\.1:\d+ \(socket "milter" passed by systemd, fd 3;/)).toHaveLength(3);
    expect(run.holder.matching(/TDC: drain finished after/)).toHaveLength(3);
    expect(run.maillog).not.toMatch(/connect to Milter service .*: Connection refused/);
  }, 90_000);

  it('without socket activation the same burst loses journal copies while the daemon restarts (the gap it closes)', async () => {
    const run = await burstWithTwoRestarts(false, 'restart-plain');
    console.log(`without socket activation: ${run.sent.length} messages, ${run.restartsDuringBurst} restarts during the burst, ${run.missing.length} delivered without a journal copy (${run.seconds.toFixed(1)} s)`);
    expect(run.sent).toHaveLength(MESSAGES);
    expect(run.restartsDuringBurst).toBe(2);
    expect(run.missing.length).toBeGreaterThan(0);
    expect(run.maillog).toMatch(/connect to Milter service inet:127\.0\.0\.1:\d+: Connection refused/);
    expect(run.holder.matching(/TDC: milter listening on inet:127\.0\.0\.1:\d+$/)).toHaveLength(3);
  }, 90_000);
});
