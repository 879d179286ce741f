/**
 * `npm run soak` (not part of npm test): the real daemon process behind real Postfix for SOAK_MINUTES
 * (default 30) of mixed traffic (sizes, recipient counts, a tdc = no policy, outgoing mail) while the
 * STARTTLS intake flaps down and up every FLAP_SECONDS (default 180). At the end: daemon RSS over time,
 * and copies offered = delivered + hard bounced + dropped from the status counters and the log lines.
 * Exits 1 when the identity fails, an original is lost, or RSS grew by more than SOAK_MAX_RSS_GROWTH_MIB.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fetchStatus } from '../lib/status';
import { ROOT, httpGet } from '../bench/processes';
import { metricValue } from '../bench/scenarios';
import { execFileSync, spawn } from 'node:child_process';
import * as os from 'node:os';
import { freePort } from '../spec/support/mta-sandbox';
import { startPostfix } from '../spec/support/postfix';
import { ScriptedIntake, TEST_CA_FILE } from '../spec/support/scripted-intake';
import { SmtpClient } from '../spec/support/smtp-client';

const MINUTES = Number(process.env['SOAK_MINUTES'] ?? 30);
const FLAP_MS = Number(process.env['FLAP_SECONDS'] ?? 180) * 1000;
const WORKERS = Number(process.env['SOAK_WORKERS'] ?? 4);
const MAX_RSS_GROWTH_MIB = Number(process.env['SOAK_MAX_RSS_GROWTH_MIB'] ?? 30);
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** The daemon (dist/lib/main.js next to this compiled file) with its output lines kept. */
function startDaemon(configFile: string): Promise<{ pid: number; lines: string[]; exited: Promise<void>; signal(s: NodeJS.Signals): void }> {
  const main = path.resolve(__dirname, '..', 'lib', 'main.js');
  const env = { ...process.env };
  delete env['TDC_MILTER_CONFIG'];
  const child = spawn(process.execPath, [main, 'run', '--config', configFile], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  const lines: string[] = [];
  let partial = '';
  const exited = new Promise<void>((resolve) => child.on('exit', () => resolve()));
  return new Promise((resolve, reject) => {
    const onData = (d: Buffer): void => {
      const parts = (partial + d.toString('utf8')).split('\n');
      partial = parts.pop()!;
      lines.push(...parts);
      if (parts.some((l) => /milter listening on/.test(l))) resolve({ pid: child.pid!, lines, exited, signal: (sig) => void child.kill(sig) });
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    void exited.then(() => reject(new Error(`daemon exited at start:\n${lines.join('\n')}`)));
  });
}

function writeConfig(text: string): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tdc-soak-'));
  fs.writeFileSync(path.join(dir, 'milter.conf'), text);
  return path.join(dir, 'milter.conf');
}

function rssMiB(pid: number): number {
  const m = /^VmRSS:\s+(\d+) kB/m.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : NaN;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] ?? NaN;
}

/** Messages in the instance's Maildir (new and cur), without reading them. */
function countDelivered(dir: string): number {
  return ['new', 'cur'].reduce((n, sub) => n + fs.readdirSync(path.join(dir, 'maildir', sub)).length, 0);
}

async function main(): Promise<void> {
  // The Debian packages the soak needs (scripts/soak-deps.txt), installed when missing; never starts a service.
  execFileSync('bash', [path.join(ROOT, 'scripts', 'install-deps.sh'), path.join(ROOT, 'scripts', 'soak-deps.txt')], { stdio: 'inherit' });
  const [milterPort, statusPort, intakePort] = [await freePort(), await freePort(), await freePort()];
  const statusListen = `127.0.0.1:${statusPort}`;
  let intake: ScriptedIntake | undefined = await ScriptedIntake.start({ port: intakePort });
  const configFile = writeConfig(`[milter]
listen = inet:127.0.0.1:${milterPort}
status_listen = ${statusListen}
hostname = gw.example.test
max_message_size = 2MiB

[tdc]
enabled = yes
intake_address = journal@intake.test
relay = [127.0.0.1]:${intakePort}
tls_ca_file = ${TEST_CA_FILE}
max_queue_age = 30s
retry_delay = 5s
connect_timeout = 2s
command_timeout = 5s

[policy lab]
recipients = @lab.example.test
tdc = no

[policy DEFAULT]
tdc = global
`);
  const daemon = await startDaemon(configFile);
  const pid = daemon.pid;
  const postfix = await startPostfix({
    milters: `inet:127.0.0.1:${milterPort}`,
    virtualDomains: ['example.test', 'lab.example.test'],
    listeners: { originating: { overrides: { milter_macro_daemon_name: 'ORIGINATING' } } },
  });
  const started = Date.now();
  const end = started + MINUTES * 60_000;
  let sent = 0;
  let recipients = 0;
  let failures = 0;
  const rss: { t: number; mib: number; tracked: number; capacity: number; heapMiB: number }[] = [];
  console.log(`soak: ${MINUTES} min, ${WORKERS} workers, intake flapping every ${FLAP_MS / 1000} s; daemon pid ${pid}`);

  // RSS, with what the status endpoint says: copies held for `track` (a bounded table that fills
  // first) and the V8 heap in use, so growth can be told apart from a table filling up.
  const sample = async (): Promise<void> => {
    const t = Date.now() - started;
    const mib = rssMiB(pid);
    try {
      const st = await fetchStatus(statusListen);
      const heapMiB = metricValue(await httpGet(`http://${statusListen}/metrics`), 'nodejs_heap_size_used_bytes') / 2 ** 20;
      rss.push({ t, mib, tracked: st.tracking.copies, capacity: st.tracking.capacity, heapMiB });
    } catch {
      rss.push({ t, mib, tracked: NaN, capacity: NaN, heapMiB: NaN });
    }
  };
  const sampler = setInterval(() => void sample(), 5000);
  const flapper = (async () => {
    while (Date.now() + FLAP_MS / 2 < end) {
      await sleep(FLAP_MS / 2);
      if (intake) {
        await intake.close();
        intake = undefined;
        console.log(`soak: ${((Date.now() - started) / 1000).toFixed(0)} s intake down`);
      } else {
        intake = await ScriptedIntake.start({ port: intakePort });
        console.log(`soak: ${((Date.now() - started) / 1000).toFixed(0)} s intake up`);
      }
    }
  })();

  const worker = async (w: number): Promise<void> => {
    for (let i = 0; Date.now() < end; i++) {
      const kind = i % 10;
      const outgoing = kind === 9;
      const to = kind === 3 ? ['ann@example.test', 'bob@example.test', 'cy@lab.example.test'] : kind === 7 ? ['dee@lab.example.test'] : ['ann@example.test'];
      const size = kind === 5 ? 300_000 : kind === 8 ? 3 * 1024 * 1024 : 2000;
      const body = `${'soak line of text for the body of the message\r\n'.repeat(Math.ceil(size / 48))}`;
      const data = Buffer.from(`From: alice@partner.test\r\nTo: ${to.join(', ')}\r\nSubject: soak ${w}.${i}\r\nMessage-ID: <soak.${w}.${i}.${started}@partner.test>\r\n\r\n${body}`);
      try {
        const c = await SmtpClient.connect(outgoing ? postfix.ports['originating']! : postfix.smtpPort, { timeoutMs: 30_000 });
        await c.ehlo('mx.partner.test');
        await c.send({ from: outgoing ? 'ann@example.test' : 'alice@partner.test', to, data });
        await c.quit();
        sent++;
        recipients += to.length;
      } catch (err) {
        failures++;
        console.error(`soak: worker ${w} message ${i}: ${String(err)}`);
      }
      await sleep(50);
    }
  };
  await Promise.all(Array.from({ length: WORKERS }, (_, w) => worker(w)));
  await flapper;
  if (!intake) intake = await ScriptedIntake.start({ port: intakePort });

  // Let Postfix deliver and the queue settle (max_queue_age 30 s bounds every copy's life).
  // Count the Maildir's files instead of reading them: 30 minutes of mail is many GiB.
  const waitUntil = Date.now() + 120_000;
  while (countDelivered(postfix.dir) < recipients && Date.now() < waitUntil) await sleep(500);
  const settleUntil = Date.now() + 60_000;
  let status = await fetchStatus(statusListen);
  while (status.queue.activeRecipients > 0 && Date.now() < settleUntil) {
    await sleep(1000);
    status = await fetchStatus(statusListen);
  }
  clearInterval(sampler);
  await sample();

  const q = status.queue;
  const count = (re: RegExp) => daemon.lines.filter((l) => re.test(l)).length;
  const offered = count(/TDC: \S+: journal copy \S+ for/);
  // One final line per copy, in the gateway's words (dropped = never attempted).
  const logDelivered = count(/TDC: MID \d+ successfully delivered for scanning with /);
  const logHard = count(/TDC: MID \d+ delivery failed to Cisco Secure Email Threat Defense/);
  const logDropped = count(/TDC: MID \d+ copy \S+ of queue id \S+ dropped from the\.tdc\.queue/);
  // Steady state: after the first minute and once the tracking table is full (it holds the last
  // `capacity` copies by design; filling it is growth by design, not a leak).
  const fullAt = rss.find((s) => s.t >= 60_000 && s.tracked >= s.capacity)?.t;
  const warm = rss.filter((s) => s.t >= (fullAt ?? 60_000));
  const head = warm.slice(0, Math.max(1, Math.floor(warm.length / 10)));
  const tail = warm.slice(-Math.max(1, Math.floor(warm.length / 10)));
  const growth = median(tail.map((s) => s.mib)) - median(head.map((s) => s.mib));
  const heapOf = (xs: typeof rss) => median(xs.map((s) => s.heapMiB).filter((v) => Number.isFinite(v)));
  const rejected = count(/TDC: MID \d+ copy \S+ of queue id \S+ dropped from the\.tdc\.queue: (queue full|shutting down)/);
  // Copies refused at a full queue count as enqueued and dropped (the forwarder's counters).
  const identityCounters = offered === q.delivered + q.hardBounced + q.dropped + q.activeRecipients && q.enqueued === offered;
  const deliveredOriginals = countDelivered(postfix.dir);
  const identityLogs = offered === logDelivered + logHard + logDropped + q.activeRecipients;

  console.log('--- soak result ---');
  console.log(`duration ${((Date.now() - started) / 60_000).toFixed(1)} min; messages sent ${sent} (${recipients} recipients), SMTP failures ${failures}; Postfix delivered ${deliveredOriginals}`);
  console.log(`copies offered ${offered} (refused at the queue ${rejected}); counters: enqueued ${q.enqueued}, delivered ${q.delivered}, soft bounced ${q.softBounced}, hard bounced ${q.hardBounced}, dropped ${q.dropped}, still queued ${q.activeRecipients}`);
  console.log(`log lines: delivered ${logDelivered}, hard bounced ${logHard}, dropped ${logDropped}`);
  console.log(`identity offered = delivered + hard + dropped + queued: counters ${identityCounters ? 'holds' : 'FAILS'}, log lines ${identityLogs ? 'holds' : 'FAILS'}`);
  console.log(`tracking table ${fullAt === undefined ? `never full (${rss[rss.length - 1]?.tracked} copies)` : `full (${rss[0]?.capacity} copies) from ${(fullAt / 1000).toFixed(0)} s`}; steady state measured from ${((fullAt ?? 60_000) / 1000).toFixed(0)} s`);
  console.log(`daemon RSS MiB: first ${rss[0]?.mib.toFixed(1)}, steady start median ${median(head.map((s) => s.mib)).toFixed(1)}, ` +
    `end median ${median(tail.map((s) => s.mib)).toFixed(1)}, max ${Math.max(...rss.map((s) => s.mib)).toFixed(1)}; growth ${growth.toFixed(1)} MiB (limit ${MAX_RSS_GROWTH_MIB}); ` +
    `V8 heap used ${heapOf(head).toFixed(1)} -> ${heapOf(tail).toFixed(1)} MiB`);

  await postfix.stop();
  daemon.signal('SIGTERM');
  await Promise.race([daemon.exited, sleep(40_000)]);
  daemon.signal('SIGKILL');
  await intake.close();
  fs.rmSync(path.dirname(configFile), { recursive: true, force: true });
  const ok = identityCounters && identityLogs && failures === 0 && deliveredOriginals === recipients && !(growth > MAX_RSS_GROWTH_MIB);
  process.exit(ok ? 0 : 1);
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
