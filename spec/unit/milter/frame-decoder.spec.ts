import fc from 'fast-check';
import { FrameDecoder, FrameDecodeError, type Frame } from '../../../lib/milter/frame-decoder';
import { pkt } from '../../fixtures/milter/postfix-trace';

function show(frames: Frame[]): Array<[string, string]> {
  return frames.map((f) => [String.fromCharCode(f.code), f.payload.toString('hex')]);
}

function decodeInPieces(stream: Buffer, cuts: number[], max?: number, streamBody = false): Frame[] {
  const d = new FrameDecoder(max, { streamBody });
  const out: Frame[] = [];
  let prev = 0;
  for (const c of [...cuts, stream.length]) {
    out.push(...d.push(stream.subarray(prev, c)));
    prev = c;
  }
  expect(d.pendingBytes).toBe(0);
  return out;
}

const STREAM = Buffer.concat([
  pkt('O', Buffer.from('000000060000 01ff001fffff'.replace(/ /g, ''), 'hex')),
  pkt('D', 'H'),
  pkt('H', 'client.example\0'),
  pkt('T'),
  pkt('B', Buffer.from([0, 1, 2, 0, 255, 13, 10])),
  pkt('E'),
]);
const EXPECTED = [
  ['O', '00000006000001ff001fffff'],
  ['D', Buffer.from('H').toString('hex')],
  ['H', Buffer.from('client.example\0').toString('hex')],
  ['T', ''],
  ['B', '00010200ff0d0a'],
  ['E', ''],
];

describe('FrameDecoder', () => {
  it('decodes several frames from one read', () => {
    expect(show(new FrameDecoder().push(STREAM))).toEqual(EXPECTED);
  });

  it('gives the same frames for the stream split at every offset', () => {
    for (let cut = 0; cut <= STREAM.length; cut++) {
      expect(show(decodeInPieces(STREAM, [cut]))).toEqual(EXPECTED);
    }
  });

  it('gives the same frames fed one byte at a time', () => {
    const cuts = Array.from({ length: STREAM.length - 1 }, (_, i) => i + 1);
    expect(show(decodeInPieces(STREAM, cuts))).toEqual(EXPECTED);
  });

  it('gives the same frames for any partition of the stream (property)', () => {
    fc.assert(
      fc.property(fc.uniqueArray(fc.integer({ min: 1, max: STREAM.length - 1 }), { maxLength: 12 }), (cuts) => {
        expect(show(decodeInPieces(STREAM, [...cuts].sort((a, b) => a - b)))).toEqual(EXPECTED);
      }),
    );
  });

  it('streamBody: a body frame spanning reads comes out as views, piece by piece; other frames as before (property)', () => {
    // Merge each run of partial body pieces with the piece that ends it: the frames of the plain decoder.
    const merged = (frames: Frame[]): Array<[string, string]> => {
      const out: Array<[string, string]> = [];
      let carry: Buffer[] = [];
      for (const f of frames) {
        if (f.partial === true) {
          expect(String.fromCharCode(f.code)).toBe('B');
          carry.push(f.payload);
          continue;
        }
        out.push([String.fromCharCode(f.code), Buffer.concat([...carry, f.payload]).toString('hex')]);
        carry = [];
      }
      expect(carry).toEqual([]);
      return out;
    };
    const big = Buffer.alloc(300);
    for (let i = 0; i < big.length; i++) big[i] = (i * 13) & 0xff;
    const stream = Buffer.concat([STREAM, pkt('B', big), pkt('H', 'x'.repeat(200) + '\0'), pkt('B', big.subarray(0, 1))]);
    const expected = show(decodeInPieces(stream, []));
    fc.assert(
      fc.property(fc.uniqueArray(fc.integer({ min: 1, max: stream.length - 1 }), { maxLength: 12 }), (cuts) => {
        expect(merged(decodeInPieces(stream, [...cuts].sort((a, b) => a - b), undefined, true))).toEqual(expected);
      }),
      { numRuns: 500 },
    );
    // The pieces are views of the reads, and the decoder counts what it is in the middle of.
    const frame = pkt('B', big);
    const d = new FrameDecoder(undefined, { streamBody: true });
    const first = Buffer.from(frame.subarray(0, 100));
    const [a] = d.push(first);
    expect(a!.partial).toBe(true);
    expect(a!.payload.buffer).toBe(first.buffer);
    expect(d.pendingBytes).toBe(100);
    const [b] = d.push(frame.subarray(100));
    expect(b!.partial).toBeUndefined();
    expect(Buffer.concat([a!.payload, b!.payload]).equals(big)).toBe(true);
    expect(d.pendingBytes).toBe(0);
  });

  it('returns views into the read for frames inside one read (no copy)', () => {
    const read = Buffer.from(STREAM); // its own memory, not the shared pool
    const [f] = new FrameDecoder().push(read.subarray(0, 17));
    expect(f!.payload.buffer).toBe(read.buffer);
    expect(f!.payload.byteOffset).toBe(read.byteOffset + 5);
  });

  it('keeps nothing pending after a complete stream, and reports partial bytes', () => {
    const d = new FrameDecoder();
    d.push(STREAM.subarray(0, 2));
    expect(d.pendingBytes).toBe(2);
    d.push(STREAM.subarray(2, 10));
    expect(d.pendingBytes).toBe(10);
    d.push(STREAM.subarray(10));
    expect(d.pendingBytes).toBe(0);
  });

  it('assembles a 5 MB body sent as 64 KiB frames read in odd-sized pieces, bytes intact', () => {
    const chunk = Buffer.alloc(65535);
    for (let i = 0; i < chunk.length; i++) chunk[i] = (i * 7) & 0xff;
    const frames = Array.from({ length: 80 }, () => pkt('B', chunk));
    const stream = Buffer.concat(frames);
    const d = new FrameDecoder();
    let got = 0;
    let bytes = 0;
    const started = process.hrtime.bigint();
    for (let off = 0; off < stream.length; off += 4093) {
      for (const f of d.push(stream.subarray(off, off + 4093))) {
        expect(f.payload.equals(chunk)).toBe(true);
        got++;
        bytes += f.payload.length;
      }
    }
    const ms = Number(process.hrtime.bigint() - started) / 1e6;
    expect(got).toBe(80);
    expect(bytes).toBe(80 * 65535);
    expect(ms).toBeLessThan(2000); // quadratic concatenation would take far longer
  });

  it('rejects a length of 0, returning the frames decoded before it', () => {
    const d = new FrameDecoder();
    const bad = Buffer.concat([pkt('T'), Buffer.from([0, 0, 0, 0, 0x54])]);
    let err: unknown;
    try {
      d.push(bad);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(FrameDecodeError);
    expect((err as FrameDecodeError).code).toBe('MILTER_FRAME_EMPTY');
    expect(show((err as FrameDecodeError).frames)).toEqual([['T', '']]);
    // A failed decoder stays failed.
    expect(() => d.push(pkt('T'))).toThrow(FrameDecodeError);
  });

  it('rejects a length above the cap from the length field alone (nothing buffered)', () => {
    const d = new FrameDecoder(1024);
    expect(() => d.push(Buffer.from([0x80, 0, 0, 0]))).toThrow(/packet length 2147483648 exceeds the limit of 1024/);
    const d2 = new FrameDecoder(1024);
    expect(() => d2.push(Buffer.from([0, 0, 4, 1, 0x42]))).toThrow(expect.objectContaining({ code: 'MILTER_FRAME_TOO_LARGE' }));
  });

  it('accepts a frame exactly at the cap, including one byte split across reads', () => {
    const frame = pkt('B', Buffer.alloc(1023, 0x61));
    expect(decodeInPieces(frame, [3, 500], 1024).map((f) => f.payload.length)).toEqual([1023]);
  });

  it('defaults to a 1 MiB cap', () => {
    const d = new FrameDecoder();
    expect(d.push(Buffer.from([0, 0x10, 0, 0]))).toEqual([]);
    expect(() => new FrameDecoder().push(Buffer.from([0, 0x10, 0, 1]))).toThrow(/exceeds the limit of 1048576/);
  });

  it('refuses a nonsensical cap', () => {
    expect(() => new FrameDecoder(0)).toThrow(/maxPacketBytes/);
  });
});
