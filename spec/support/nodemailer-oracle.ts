/**
 * nodemailer's DATA stream as a test oracle for our dot-stuffer: run a transform function over
 * pieces of a message inside a DataStream and collect what it writes, with its byte counters.
 * Test support only: imports nodemailer, nothing from lib/.
 */
import DataStream from 'nodemailer/lib/smtp-connection/data-stream';

export type TransformFn = (chunk: unknown, encoding: string, done: (err?: Error | null) => void) => void;

/** nodemailer's own transform as its module defines it (before anything patches the prototype). */
export function dataStreamTransform(): TransformFn {
  return (DataStream.prototype as unknown as { _transform: TransformFn })._transform;
}

/** Everything `transform` writes for `pieces`, with the end of data, and the stream's counters. */
export function through(transform: TransformFn, pieces: Buffer[]): { bytes: string; inCount: number; outCount: number } {
  const s = new DataStream();
  const out: Buffer[] = [];
  (s as unknown as { push(b: Buffer): boolean }).push = (b) => { out.push(b); return true; };
  for (const p of pieces) transform.call(s, p, 'buffer', () => {});
  (s as unknown as { _flush(done: () => void): void })._flush(() => {});
  return { bytes: Buffer.concat(out).toString('latin1'), inCount: s.inByteCount, outCount: s.outByteCount };
}
