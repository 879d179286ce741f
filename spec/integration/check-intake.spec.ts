/**
 * `tdc-milter check-intake` (dist/lib/main.js) against the loopback STARTTLS intake: valid (0),
 * untrusted certificate, TLS 1.1 only, no STARTTLS, 550 to the null sender (2), a 4xx to the intake
 * address or an unreachable first MX (1), --dns with the loopback DNS server, --send, usage (3).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { runCli, writeConfig } from '../support/daemon-process';
import { TestDnsServer } from '../support/dns-server';
import { ScriptedIntake, TEST_CA_FILE, type IntakeOptions } from '../support/scripted-intake';

function configText(relay: string, milterExtra = ''): string {
  return `[milter]
hostname = gw.example.test
status_listen = no
${milterExtra}
[tdc]
enabled = yes
intake_address = journal@intake.test
relay = ${relay}
tls_ca_file = ${TEST_CA_FILE}
connect_timeout = 5s
command_timeout = 5s
`;
}

const configs: string[] = [];
function config(relay: string, milterExtra = ''): string {
  const f = writeConfig(configText(relay, milterExtra), 'tdc-check-');
  configs.push(f);
  return f;
}
afterAll(() => {
  for (const f of configs) fs.rmSync(path.dirname(f), { recursive: true, force: true });
});

async function againstIntake(options: IntakeOptions, extra: string[] = []): Promise<{ status: number | null; stdout: string; intake: ScriptedIntake }> {
  const intake = await ScriptedIntake.start(options);
  try {
    const r = await runCli(['check-intake', '--config', config(`[127.0.0.1]:${intake.port}`), ...extra]);
    expect(r.stderr).toBe('');
    return { status: r.status, stdout: r.stdout, intake };
  } finally {
    await intake.close();
  }
}

describe('tdc-milter check-intake', () => {
  it('valid intake: exit 0, TLS version, cipher, certificate names and chain, the dialogue ending in RSET', async () => {
    const { status, stdout, intake } = await againstIntake({});
    expect(stdout).toMatch(new RegExp(`^CHECK-INTAKE OK - journal@intake\\.test: 127\\.0\\.0\\.1\\[127\\.0\\.0\\.1\\]:${intake.port} TLSv1\\.3 TLS_\\w+, certificate valid for 127\\.0\\.0\\.1, MAIL FROM:<> and RCPT TO accepted\\n`));
    expect(status).toBe(0);
    expect(stdout).toMatch(/^route: relay: 127\.0\.0\.1 \(127\.0\.0\.1\) port \d+$/m);
    expect(stdout).toMatch(/^TLS TLSv1\.3 cipher TLS_\w+$/m);
    expect(stdout).toMatch(/^certificate for mx1\.intake\.test, mx2\.intake\.test, mx3\.intake\.test, intake\.test, relay\.intake\.test, localhost, 127\.0\.0\.1, .*valid until 21\d\d-/m);
    expect(stdout).toMatch(/^ {2}0 subject CN=intake \(test only\), issuer CN=tdc-milter TEST CA \(test only\), valid until/m);
    expect(stdout).toMatch(/^ {2}> MAIL FROM:<>\n {2}< 250 .*\n {2}> RCPT TO:<journal@intake\.test>\n {2}< 250 .*\n {2}> RSET\n/m);
    expect(intake.transactions).toBe(1);
    expect(intake.received).toHaveLength(0);
  });

  it('untrusted certificate: exit 2, and the certificate is still shown', async () => {
    const { status, stdout } = await againstIntake({ cert: 'untrusted' });
    expect(status).toBe(2);
    expect(stdout).toMatch(/^CHECK-INTAKE CRITICAL - journal@intake\.test: certificate of 127\.0\.0\.1\[127\.0\.0\.1\]:\d+ not trusted: self-signed certificate \(DEPTH_ZERO_SELF_SIGNED_CERT\)\n/);
    expect(stdout).toMatch(/^ {2}0 subject CN=untrusted \(test only\), issuer CN=untrusted \(test only\)/m);
  });

  it('TLS 1.1 only: exit 2, the handshake fails', async () => {
    const { status, stdout } = await againstIntake({ minVersion: 'TLSv1.1', maxVersion: 'TLSv1.1' });
    expect(status).toBe(2);
    expect(stdout).toMatch(/^CHECK-INTAKE CRITICAL - journal@intake\.test: TLS handshake with 127\.0\.0\.1\[127\.0\.0\.1\]:\d+ failed \(TLS 1\.2 or newer required\): /);
  });

  it('no STARTTLS: exit 2, nothing is sent in plaintext', async () => {
    const { status, stdout, intake } = await againstIntake({ noStartTls: true });
    expect(status).toBe(2);
    expect(stdout).toMatch(/^CHECK-INTAKE CRITICAL - journal@intake\.test: 127\.0\.0\.1\[127\.0\.0\.1\]:\d+ offers no STARTTLS: copies are never sent in plaintext, so every one would hard bounce\n/);
    expect(stdout).not.toContain('> MAIL FROM');
    expect(intake.transactions).toBe(0);
  });

  it('550 to the null sender: exit 2 with the reply', async () => {
    const { status, stdout } = await againstIntake({ replies: [{ stage: 'mail', code: 550, message: 'null sender refused' }] });
    expect(status).toBe(2);
    expect(stdout).toMatch(/^CHECK-INTAKE CRITICAL - journal@intake\.test: MAIL FROM:<> \(the null sender every copy uses\) answered 550 null sender refused\n/);
  });

  it('a 4xx to the intake address is a warning (the forwarder retries once): exit 1', async () => {
    const { status, stdout } = await againstIntake({ replies: [{ stage: 'rcpt', code: 451, message: 'try again later' }] });
    expect(status).toBe(1);
    expect(stdout).toMatch(/^CHECK-INTAKE WARNING - journal@intake\.test: RCPT TO:<journal@intake\.test> answered 451 try again later\n/);
  });

  it('an intake SIZE limit below max_message_size is a warning: exit 1', async () => {
    const intake = await ScriptedIntake.start();
    try {
      const r = await runCli(['check-intake', '--config', config(`[127.0.0.1]:${intake.port}`, 'max_message_size = 100MiB\n')]);
      expect(r.stdout).toMatch(/^CHECK-INTAKE WARNING - journal@intake\.test: the intake takes messages up to 52428800 bytes \(SIZE\), less than max_message_size \(104857600\): copies of bigger messages would be refused\n/);
      expect(r.status).toBe(1);
    } finally {
      await intake.close();
    }
  });

  it('--send: a marked test journal from the null sender is accepted; exit 0', async () => {
    const { status, stdout, intake } = await againstIntake({}, ['--send']);
    expect(status).toBe(0);
    expect(stdout).toMatch(/^CHECK-INTAKE OK - .*, test journal accepted \(250 2\.0\.0 Ok: queued as TEST\)\n/);
    expect(intake.received).toHaveLength(1);
    const got = intake.received[0]!;
    expect(got.rcptTo).toEqual(['journal@intake.test']);
    expect(got.raw.toString('latin1')).toMatch(/^X-TDC-Journal: gw\.example\.test; queue-id=check-intake-\w+; copy-id=check-intake-\w+\.1; policy=check-intake\r$/m);
    expect(got.raw.toString('latin1')).toMatch(/^Subject: tdc-milter check-intake test journal\r$/m);
  });

  describe('--dns with the loopback DNS server', () => {
    let intake: ScriptedIntake;
    let dns: TestDnsServer;
    beforeAll(async () => {
      intake = await ScriptedIntake.start();
      dns = await TestDnsServer.start({
        'intake.test': { mx: [[10, 'mx1.intake.test']] },
        'mx1.intake.test': { a: ['127.0.0.1'] },
        'two.test': { mx: [[10, 'mx1.two.test'], [20, 'mx2.intake.test']] },
        'mx1.two.test': { a: ['127.0.0.2'] },
        'mx2.intake.test': { a: ['127.0.0.1'] },
      });
    });
    afterAll(async () => {
      await intake.close();
      await dns.close();
    });
    const run = (address: string) => runCli(['check-intake', address, '--config', config(''), '--dns', dns.address, '--port', String(intake.port)]);

    it('resolves the MX and checks the certificate against the MX name: exit 0', async () => {
      const r = await run('journal@intake.test');
      expect(r.stdout).toMatch(new RegExp(`^CHECK-INTAKE OK - journal@intake\\.test: mx1\\.intake\\.test\\[127\\.0\\.0\\.1\\]:${intake.port} TLSv1\\.3 \\S+, certificate valid for mx1\\.intake\\.test,`));
      expect(r.stdout).toMatch(new RegExp(`^route: MX of intake\\.test: mx1\\.intake\\.test \\(127\\.0\\.0\\.1\\) port ${intake.port}$`, 'm'));
      expect(r.status).toBe(0);
    });

    it('first MX unreachable, the second works: a warning, exit 1', async () => {
      const r = await run('journal@two.test');
      expect(r.stdout).toMatch(/^CHECK-INTAKE WARNING - journal@two\.test: not reachable, the next host was used: mx1\.two\.test\[127\.0\.0\.2\]:\d+: connect ECONNREFUSED/);
      expect(r.stdout).toMatch(/^connected to mx2\.intake\.test\[127\.0\.0\.1\]/m);
      expect(r.status).toBe(1);
    });

    it('NXDOMAIN: exit 2', async () => {
      const r = await run('journal@nowhere.test');
      expect(r.stdout).toBe('CHECK-INTAKE CRITICAL - journal@nowhere.test: DNS: MX lookup for nowhere.test: NXDOMAIN\nCRITICAL: DNS: MX lookup for nowhere.test: NXDOMAIN\n');
      expect(r.status).toBe(2);
    });
  });

  it('bad options or no intake address: UNKNOWN, exit 3', async () => {
    const bad = await runCli(['check-intake', 'not-an-address', '--config', config('')]);
    expect(bad.stdout).toBe('CHECK-INTAKE UNKNOWN - ADDRESS: expected user@domain, got "not-an-address"\n');
    expect(bad.stderr).toMatch(/^usage: tdc-milter check-intake/);
    expect(bad.status).toBe(3);
    const none = writeConfig('[milter]\nstatus_listen = no\n', 'tdc-check-');
    configs.push(none);
    const r = await runCli(['check-intake', '--config', none]);
    expect(r.stdout).toBe(`CHECK-INTAKE UNKNOWN - no intake address: give one, or set intake_address in ${none}\n`);
    expect(r.status).toBe(3);
  });
});
