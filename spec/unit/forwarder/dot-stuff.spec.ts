/**
 * Our DATA dot-stuffing against nodemailer's own DataStream transform (the reference it replaces):
 * the same bytes and byte counters for arbitrary inputs rich in CR, LF and dots, cut anywhere; plus
 * the RFC 5321 rules spelled out, and the installation's self-check rejecting a wrong transform.
 */
import fc from 'fast-check';
import { PassThrough, Readable } from 'node:stream';
import DataStream from 'nodemailer/lib/smtp-connection/data-stream';
import { dotStuff, endOfData, START_OF_DATA } from '../../../lib/forwarder/dot-stuff';
import { splitAt } from '../../support/split-at';
import { installFastDotStuffing, nodemailerTransform, sameAsReference, type TransformFn } from '../../../lib/forwarder/nodemailer-data-stream';

/** Everything `transform` writes for `pieces`, with the end of data, and the stream's counters. */
function through(transform: TransformFn, pieces: Buffer[]): { bytes: string; inCount: number; outCount: number } {
  const s = new DataStream();
  const out: Buffer[] = [];
  (s as unknown as { push(b: Buffer): boolean }).push = (b) => { out.push(b); return true; };
  for (const p of pieces) transform.call(s, p, 'buffer', () => {});
  (s as unknown as { _flush(done: () => void): void })._flush(() => {});
  return { bytes: Buffer.concat(out).toString('latin1'), inCount: s.inByteCount, outCount: s.outByteCount };
}

/** Ours, without any stream: chunk by chunk, then the end of data. */
function ours(pieces: Buffer[]): string {
  let last = START_OF_DATA;
  const out: Buffer[] = [];
  for (const p of pieces) {
    if (p.length === 0) continue;
    out.push(dotStuff(p, last));
    last = p[p.length - 1]!;
  }
  out.push(endOfData(last));
  return Buffer.concat(out).toString('latin1');
}

const reference = nodemailerTransform();
installFastDotStuffing();
const installed = (DataStream.prototype as unknown as { _transform: TransformFn })._transform;
const mailBytes = fc.array(fc.constantFrom(0x0d, 0x0a, 0x2e, 0x41, 0x20, 0x00, 0xff), { maxLength: 300 }).map((a) => Buffer.from(a));

describe('dotStuff', () => {
  it('doubles a dot at the start of every line, first line included', () => {
    expect(ours([Buffer.from('.a\r\n.\r\n..b\r\nc.d\r\n')])).toBe('..a\r\n..\r\n...b\r\nc.d\r\n.\r\n');
  });

  it('turns bare CR and bare LF into CRLF, and doubles a dot after a bare CR (no "<CR>.<CR>" smuggling)', () => {
    expect(ours([Buffer.from('a\rb\nc\r.\r')])).toBe('a\r\nb\r\nc\r\n..\r\n.\r\n');
  });

  it('returns the very chunk when nothing changes (no copy for ordinary CRLF text)', () => {
    const chunk = Buffer.from('Subject: x\r\n\r\nbody line\r\n');
    expect(dotStuff(chunk, START_OF_DATA)).toBe(chunk);
  });

  it('looks back across chunk boundaries: CR|LF, CRLF|., CR|.', () => {
    expect(ours([Buffer.from('a\r'), Buffer.from('\nb')])).toBe('a\r\nb\r\n.\r\n');
    expect(ours([Buffer.from('a\r\n'), Buffer.from('.b\r\n')])).toBe('a\r\n..b\r\n.\r\n');
    expect(ours([Buffer.from('a\r'), Buffer.from('.b\r\n')])).toBe('a\r\n..b\r\n.\r\n');
  });

  it('gives nodemailer\'s bytes and counters for any input cut anywhere (property)', () => {
    fc.assert(
      fc.property(mailBytes, fc.array(fc.nat(), { maxLength: 6 }), (input, cuts) => {
        const pieces = splitAt(input, cuts);
        const theirs = through(reference, pieces);
        expect(ours(pieces)).toBe(theirs.bytes);
        // Installed in the stream: the same bytes and the same in/out byte counters.
        expect(through(installed, pieces)).toEqual(theirs);
      }),
      { numRuns: 2000 },
    );
  });
});

describe('installFastDotStuffing', () => {
  it('installs over nodemailer 10\'s stream after its self-check, and the stream then gives the same bytes', async () => {
    expect(installed).not.toBe(reference);
    expect(installFastDotStuffing()).toBe('already');
    const input = Buffer.from('.x\r\na\rb\nc\r\n.', 'latin1');
    const s = new DataStream();
    const collected: Buffer[] = [];
    const sink = new PassThrough();
    sink.on('data', (b: Buffer) => collected.push(b));
    await new Promise<void>((resolve, reject) => {
      Readable.from([input.subarray(0, 5), input.subarray(5)]).pipe(s).pipe(sink);
      sink.on('end', resolve);
      s.on('error', reject);
    });
    expect(Buffer.concat(collected).toString('latin1')).toBe(through(reference, [input]).bytes);
    expect(s.inByteCount).toBe(input.length);
    expect(s.outByteCount).toBe(Buffer.concat(collected).length);
  });

  it('its self-check refuses a transform that differs from nodemailer\'s', () => {
    const noStuffing: TransformFn = function (this: { push(b: Buffer): boolean }, chunk, _e, done) {
      this.push(chunk as Buffer);
      done();
    };
    expect(sameAsReference(noStuffing, reference)).toBe(false);
    expect(sameAsReference(reference, reference)).toBe(true);
  });
});
