/**
 * The logger's line forms: journald priority prefixes by level, the gateway's timestamp (ctime form,
 * local time) and the JOURNAL_STREAM check. Pure parts and an in-memory stream; no files.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { PassThrough, Writable } from 'node:stream';
import { createLogger, gatewayTimestamp, oneLine, stdoutIsJournal } from '../../../lib/util/logger';

describe('gatewayTimestamp', () => {
  it('is ctime form in local time, a day below 10 space-padded', () => {
    expect(gatewayTimestamp(new Date(2024, 1, 16, 21, 19, 22))).toBe('Fri Feb 16 21:19:22 2024');
    expect(gatewayTimestamp(new Date(2024, 1, 6, 4, 5, 6))).toBe('Tue Feb  6 04:05:06 2024');
  });
});

describe('journald lines', () => {
  it('carry <3> <4> <6> <7> by level and no timestamp; prefix: false keeps the line bare', async () => {
    const stream = new PassThrough();
    let text = '';
    stream.on('data', (d: Buffer) => { text += d.toString(); });
    const log = createLogger({ stream, journald: true, level: 'debug' });
    log.error('e');
    log.warn('w');
    log.info('i');
    log.debug('d');
    log.info('DCID 1 TLS success', { prefix: false });
    await log.close();
    expect(text.split('\n').filter((l) => l !== '')).toEqual([
      '<3>Error: TDC: e', '<4>Warning: TDC: w', '<6>Info: TDC: i', '<7>Debug: TDC: d', '<6>Info: DCID 1 TLS success',
    ]);
  });
});

describe('stdoutIsJournal', () => {
  it('is true only when JOURNAL_STREAM names the device and inode of that fd', () => {
    const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'tdc-js-')), 'out');
    const fd = fs.openSync(file, 'w');
    try {
      const st = fs.fstatSync(fd);
      expect(stdoutIsJournal({ JOURNAL_STREAM: `${st.dev}:${st.ino}` }, fd)).toBe(true);
      expect(stdoutIsJournal({ JOURNAL_STREAM: `${st.dev}:${st.ino + 1}` }, fd)).toBe(false);
      expect(stdoutIsJournal({}, fd)).toBe(false);
      expect(stdoutIsJournal({ JOURNAL_STREAM: 'garbage' }, fd)).toBe(false);
    } finally {
      fs.closeSync(fd);
    }
  });
});

describe('oneLine', () => {
  it('escapes C0, DEL, C1 and the Unicode line separators, so a value cannot split a line or steer a terminal', () => {
    expect(oneLine('a\r\nb\tc\x00d\x7f')).toBe('a\\r\\nb\\tc\\x00d\\x7f');
    expect(oneLine('id\u009b31mred\u0085x')).toBe('id\\x9b31mred\\x85x');
    expect(oneLine('one\u2028two\u2029three')).toBe('one\\u2028two\\u2029three');
    expect(oneLine('Grüße ☃ ü')).toBe('Grüße ☃ ü');
  });
});

describe('line forms and level', () => {
  const capture = (): { stream: PassThrough; text: () => string } => {
    const stream = new PassThrough();
    let text = '';
    stream.on('data', (d: Buffer) => { text += d.toString(); });
    return { stream, text: () => text };
  };

  it('plain stdout lines carry an ISO time, the level word and TDC:; lines below the level are not written', async () => {
    const c = capture();
    const log = createLogger({ stream: c.stream, journald: false, level: 'warning' });
    log.info('not at warning');
    log.debug('nor this');
    log.warn('kept\nas one line');
    log.error('bare', { prefix: false });
    await log.close();
    expect(c.text().split('\n').filter((l) => l !== '')).toEqual([
      expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z Warning: TDC: kept\\nas one line$/),
      expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z Error: bare$/),
    ]);
  });

  it('log_format = json: one object per line with time, level and the message', async () => {
    const c = capture();
    const log = createLogger({ stream: c.stream, journald: false, format: 'json' });
    log.info('MID 1 "quoted"');
    log.debug('below info');
    await log.close();
    const docs = c.text().split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(docs).toEqual([{ time: expect.stringMatching(/^\d{4}-\d\d-\d\dT/), level: 'info', message: 'TDC: MID 1 "quoted"' }]);
  });

  it('log_file: the gateway timestamp, and close() resolves once the file holds every line', async () => {
    const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'tdc-lf-')), 'tdc.log');
    const log = createLogger({ file });
    for (let i = 0; i < 100; i++) log.info(`line ${i}`);
    await log.close();
    const lines = fs.readFileSync(file, 'utf8').split('\n').filter((l) => l !== '');
    expect(lines).toHaveLength(100);
    expect(lines[99]).toMatch(/^\w{3} \w{3} [ \d]\d \d\d:\d\d:\d\d \d{4} Info: TDC: line 99$/);
  });
});

describe('writes', () => {
  it('lines logged close together go out as one write, in order; later ones in the next write', async () => {
    const writes: string[] = [];
    const stream = new Writable({ write(chunk: Buffer, _enc, done) { writes.push(chunk.toString()); done(); } });
    const log = createLogger({ stream, journald: true });
    log.info('a');
    log.warn('b');
    log.info('c', { prefix: false });
    expect(writes).toEqual([]);
    await new Promise((r) => setTimeout(r, 50));
    expect(writes).toHaveLength(1);
    log.error('d');
    await log.close();
    expect(writes).toEqual(['<6>Info: TDC: a\n<4>Warning: TDC: b\n<6>Info: c\n', '<3>Error: TDC: d\n']);
  });

  it('64 KiB of waiting lines are written at once, without waiting for the timer', () => {
    const writes: string[] = [];
    const stream = new Writable({ write(chunk: Buffer, _enc, done) { writes.push(chunk.toString()); done(); } });
    const log = createLogger({ stream, journald: true });
    const text = 'x'.repeat(1000);
    for (let i = 0; i < 70; i++) log.info(text);
    expect(writes.length).toBe(1);
    expect(writes[0]!.split('\n').filter((l) => l !== '')).toHaveLength(65);
    void log.close();
  });
});
