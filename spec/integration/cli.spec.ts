/**
 * The command line as an admin uses it: the README's run command on the embedded default config,
 * SIGTERM stopping it cleanly, check-config and config exit codes. Runs the built dist/ (npm test builds).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';

const MAIN = path.resolve(__dirname, '../../dist/lib/main.js');

function env(): NodeJS.ProcessEnv {
  const e = { ...process.env };
  delete e['TDC_MILTER_CONFIG'];
  return e;
}

function waitForLine(child: ChildProcess, pattern: RegExp, timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`no line matching ${pattern} within ${timeoutMs} ms; output:\n${out}`)), timeoutMs);
    const onData = (d: Buffer) => {
      out += d.toString();
      const m = out.split('\n').find((l) => pattern.test(l));
      if (m !== undefined) {
        clearTimeout(timer);
        resolve(m);
      }
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
  });
}

/** A milter OPTNEG offer as Postfix 3.7 sends it: version 6, actions 0x1FF, protocol 0x1FFFFF. */
function optnegOffer(): Buffer {
  const b = Buffer.alloc(17);
  b.writeUInt32BE(13, 0);
  b.write('O', 4, 'latin1');
  b.writeUInt32BE(6, 5);
  b.writeUInt32BE(0x1ff, 9);
  b.writeUInt32BE(0x1fffff, 13);
  return b;
}

function negotiate(port: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1', () => s.write(optnegOffer()));
    let got = Buffer.alloc(0);
    s.on('data', (d) => {
      got = Buffer.concat([got, d]);
      if (got.length >= 4 && got.length >= 4 + got.readUInt32BE(0)) {
        s.end();
        resolve(got);
      }
    });
    s.on('error', reject);
  });
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.listen(0, '127.0.0.1', () => {
      const a = srv.address();
      srv.close(() => (a && typeof a === 'object' ? resolve(a.port) : reject(new Error('no port'))));
    });
  });
}

/** A daemon on a fresh config file (milter on a free loopback port, status off); always cleaned up. */
async function withDaemon(fn: (d: { child: ChildProcess; conf: string; port: number }) => Promise<void>): Promise<void> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tdc-cli-'));
  const conf = path.join(dir, 'milter.conf');
  const port = await freePort();
  fs.writeFileSync(conf, `[milter]\nlisten = inet:127.0.0.1:${port}\nstatus_listen = no\n`);
  const child = spawn(process.execPath, [MAIN, 'run', '--config', conf], { env: env(), stdio: ['ignore', 'pipe', 'pipe'] });
  try {
    await fn({ child, conf, port });
  } finally {
    child.kill('SIGKILL');
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

describe('tdc-milter command line', () => {
  beforeAll(() => {
    if (!fs.existsSync(MAIN)) throw new Error(`${MAIN} is missing: run the tests with "npm test", which builds first`);
  });

  it('runs on the embedded default config on loopback and stops cleanly on SIGTERM', async () => {
    const child = spawn(process.execPath, [MAIN], { env: env(), stdio: ['ignore', 'pipe', 'pipe'] });
    try {
      const line = await waitForLine(child, /milter listening on/, 15000);
      expect(line).toMatch(/TDC: milter listening on inet:127\.0\.0\.1:8894/);
      const reply = await negotiate(8894);
      expect(reply.subarray(4, 5).toString('latin1')).toBe('O');
      expect(reply.readUInt32BE(5)).toBe(6);
      const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
      const stopped = waitForLine(child, /TDC: stopped/, 10000);
      child.kill('SIGTERM');
      await stopped;
      expect(await exited).toBe(0);
      // The listener is gone.
      await expect(negotiate(8894)).rejects.toThrow(/ECONNREFUSED/);
    } finally {
      child.kill('SIGKILL');
    }
  });

  it('check-config exits 0 on a good file and 1 with file:line on a bad one', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tdc-cli-'));
    const good = path.join(dir, 'good.conf');
    const bad = path.join(dir, 'bad.conf');
    fs.writeFileSync(good, '[milter]\nlisten = inet:127.0.0.1:0\n');
    fs.writeFileSync(bad, '[milter]\nlisten = inet:127.0.0.1:0\n\n[tdc]\nmax_queue_age = soon\n');
    const ok = spawnSync(process.execPath, [MAIN, 'check-config', '--config', good], { env: env(), encoding: 'utf8' });
    expect(ok.status).toBe(0);
    const ko = spawnSync(process.execPath, [MAIN, 'check-config', '--config', bad], { env: env(), encoding: 'utf8' });
    expect(ko.status).toBe(1);
    expect(ko.stdout).toContain(`${bad}:5: max_queue_age`);
    const shown = spawnSync(process.execPath, [MAIN, 'config', '--config', good], { env: env(), encoding: 'utf8' });
    expect(shown.status).toBe(0);
    expect(shown.stdout).toMatch(/listen\s*=\s*inet:127\.0\.0\.1:0/);
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('check-config prints every expected file:line for each invalid fixture and exits 1', () => {
    const dir = path.resolve(__dirname, '../fixtures/config/invalid');
    const files = fs.readdirSync(dir).filter((f) => f.endsWith('.conf'));
    expect(files.length).toBeGreaterThan(10);
    for (const f of files) {
      const file = path.join(dir, f);
      const expected = fs
        .readFileSync(file, 'utf8')
        .split('\n')
        .map((l) => /^# expect: (\d+): (.*)$/.exec(l))
        .filter((m): m is RegExpExecArray => m !== null)
        .map((m) => `${file}:${m[1]}: ${m[2]}`);
      expect(expected.length).toBeGreaterThan(0);
      const r = spawnSync(process.execPath, [MAIN, 'check-config', '--config', file], { env: env(), encoding: 'utf8' });
      expect({ file: f, status: r.status }).toEqual({ file: f, status: 1 });
      for (const e of expected) expect(r.stdout).toContain(e);
    }
  });

  it('SIGHUP reloads a good file and refuses a broken one, keeping the old settings and serving on', async () => {
    await withDaemon(async ({ child, conf, port }) => {
    await waitForLine(child, /milter listening on/, 15000);
    fs.writeFileSync(conf, `[milter]\nlisten = inet:127.0.0.1:${port}\nstatus_listen = no\n[tdc]\nmax_queue_age = never\n`);
    const refused = waitForLine(child, /reload refused: .*milter\.conf:5: max_queue_age.*; old settings kept$/, 10000);
    child.kill('SIGHUP');
    await refused;
    expect((await negotiate(port)).readUInt32BE(5)).toBe(6); // still serving
    fs.writeFileSync(
      conf,
      `[milter]\nlisten = inet:127.0.0.1:${port}\nstatus_listen = no\n[tdc]\nenabled = yes\nintake_address = j@intake.test\n`,
    );
    const reloaded = waitForLine(child, /configuration reloaded; journaling on/, 10000);
    child.kill('SIGHUP');
    await reloaded;
    expect((await negotiate(port)).readUInt32BE(5)).toBe(6);
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    child.kill('SIGTERM');
    expect(await exited).toBe(0);
    });
  });

  it('a SIGHUP during start-up neither kills the daemon nor is lost', async () => {
    await withDaemon(async ({ child, port }) => {
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    const reloaded = waitForLine(child, /configuration reloaded|reload refused/, 15000);
    const listening = waitForLine(child, /milter listening on/, 15000);
    await waitForLine(child, /TDC: starting tdc-milter/, 15000);
    child.kill('SIGHUP'); // the very first line: start-up is still under way
    await listening;
    await reloaded;
    expect((await negotiate(port)).readUInt32BE(5)).toBe(6);
    child.kill('SIGTERM');
    expect(await exited).toBe(0);
    });
  });

  it('keeps working and stops cleanly when the reader of its stdout and stderr goes away (EPIPE)', async () => {
    await withDaemon(async ({ child, port }) => {
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    await waitForLine(child, /milter listening on/, 15000);
    child.stdout!.destroy(); // the log reader dies: every further line hits EPIPE
    child.stderr!.destroy();
    child.kill('SIGHUP'); // makes it log
    await new Promise((r) => setTimeout(r, 300));
    expect((await negotiate(port)).readUInt32BE(5)).toBe(6); // still serving
    child.kill('SIGTERM');
    const code = await Promise.race([exited, new Promise<string>((r) => setTimeout(() => r('still running after 8 s'), 8000))]);
    expect(code).toBe(0);
    });
  });

  it('--version and -V print the version of package.json and exit 0', () => {
    const pkg = JSON.parse(fs.readFileSync(path.resolve(__dirname, '../../package.json'), 'utf8')) as { version: string };
    for (const flag of ['--version', '-V']) {
      const r = spawnSync(process.execPath, [MAIN, flag], { env: env(), encoding: 'utf8' });
      expect({ flag, status: r.status, stdout: r.stdout, stderr: r.stderr }).toEqual({ flag, status: 0, stdout: `tdc-milter ${pkg.version}\n`, stderr: '' });
    }
  });

  it('--help and -h list every command and option and the exit codes', () => {
    for (const flag of ['--help', '-h']) {
      const r = spawnSync(process.execPath, [MAIN, flag], { env: env(), encoding: 'utf8' });
      expect(r.status).toBe(0);
      for (const c of ['run', 'check-config', 'config', 'status', 'track ID', 'help']) expect(r.stdout).toMatch(new RegExp(`^  ${c}\\b`, 'm'));
      for (const o of ['-c, --config FILE', '-h, --help', '-V, --version', '--json']) expect(r.stdout).toContain(o);
      expect(r.stdout).toMatch(/^exit codes:\n  0 .*\n  1 .*[\s\S]*\n  2 +usage error/m);
    }
  });

  it.each([
    [['--bogus'], 'tdc-milter: unknown option --bogus'],
    [['check-config', '--json'], 'tdc-milter: option --json is not an option of check-config'],
    [['check-config', 'extra'], 'tdc-milter: unexpected argument "extra" for check-config'],
    [['check-config', '--config'], 'tdc-milter: --config needs a value'],
    [['frobnicate'], 'tdc-milter: unknown command "frobnicate"'],
  ])('usage error %j: a message on stderr, exit 2, nothing started', (args, message) => {
    const r = spawnSync(process.execPath, [MAIN, ...args], { env: env(), encoding: 'utf8', timeout: 10000 });
    expect(r.status).toBe(2);
    expect(r.stderr.split('\n')[0]).toBe(message);
    expect(r.stdout).toBe('');
  });

  it('check-config exits 2 when the file itself cannot be read', () => {
    const r = spawnSync(process.execPath, [MAIN, 'check-config', '--config', '/nonexistent-tdc-milter-dir/milter.conf'], { env: env(), encoding: 'utf8' });
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/^\/nonexistent-tdc-milter-dir\/milter\.conf:0: file: expected a readable file, got .*ENOENT/);
  });

  // check-config = daemon: the daemon refuses each of these files at start with the very same line.
  it.each(['status-listen-hostname.conf', 'status-listen-not-loopback.conf', 'listen-hostname.conf', 'missing-ca-file.conf',
    'ca-file-not-pem.conf', 'unix-socket-missing-directory.conf', 'socket-group-unknown.conf'])('%s: check-config exits 1 and run refuses to start, with the same file:line', (name) => {
    const file = path.resolve(__dirname, '../fixtures/config/invalid', name);
    const expected = [...fs.readFileSync(file, 'utf8').matchAll(/^# expect: (.*)$/gm)].map((m) => `${file}:${m[1]}`);
    expect(expected).toHaveLength(1);
    const check = spawnSync(process.execPath, [MAIN, 'check-config', '--config', file], { env: env(), encoding: 'utf8', timeout: 10000 });
    expect({ status: check.status, stdout: check.stdout }).toEqual({ status: 1, stdout: `${expected[0]}\n` });
    const run = spawnSync(process.execPath, [MAIN, 'run', '--config', file], { env: env(), encoding: 'utf8', timeout: 10000 });
    expect(run.status).toBe(1);
    expect(run.stderr.split('\n')[0]).toBe(expected[0]);
  });

  it('refuses to start on a broken file and says why', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tdc-cli-'));
    const bad = path.join(dir, 'bad.conf');
    fs.writeFileSync(bad, '[milter]\nlisten = tcp:127.0.0.1:0\n');
    const r = spawnSync(process.execPath, [MAIN, 'run', '--config', bad], { env: env(), encoding: 'utf8', timeout: 10000 });
    expect(r.status).toBe(1);
    expect(r.stderr).toContain(`${bad}:2: listen`);
    fs.rmSync(dir, { recursive: true, force: true });
  });
});
