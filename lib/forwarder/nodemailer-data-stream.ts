/**
 * Puts dot-stuff.ts in place of nodemailer's DataStream transform (the per-byte loop that cost a
 * third of the daemon's CPU on 1 MiB copies, bench issue 7). Installed only after a self-check:
 * nodemailer's own transform and ours must give the same bytes and counters on a set of tricky
 * inputs cut at every offset; on any other nodemailer (a version whose stream differs) the check
 * fails and nodemailer's transform stays. Process-wide and idempotent. Imports ../smtp/dot-stuff only.
 */
import DataStream from 'nodemailer/lib/smtp-connection/data-stream';
import { dotStuff, START_OF_DATA } from '../smtp/dot-stuff';

export type TransformFn = (chunk: unknown, encoding: string, done: (err?: Error | null) => void) => void;

interface DataStreamLike {
  inByteCount: number;
  outByteCount: number;
  lastByte: number | false;
  push(chunk: Buffer): boolean;
}

/** Inputs that exercise every rule: dots at line starts, bare CR/LF, CR at chunk ends, empty lines. */
export const SELF_CHECK_INPUTS: readonly string[] = Object.freeze([
  '.\r\n..\r\nx\r\n.y\r\n',
  'a\rb\nc\r\n\r\n.\r.\n.\r\r\n\n\r\r.',
  '\n.\n\r\n.\r',
  'Subject: x\r\n\r\nbody\r\n.\r\n',
  '\r',
  '',
]);

export type InstallResult = 'installed' | 'already' | 'kept-nodemailer';

const ours: TransformFn = function (this: DataStreamLike, chunk, _encoding, done) {
  if (chunk === null || chunk === undefined || (chunk as { length?: number }).length === 0) {
    done();
    return;
  }
  const buf = typeof chunk === 'string' ? Buffer.from(chunk) : (chunk as Buffer);
  this.inByteCount += buf.length;
  const out = dotStuff(buf, this.lastByte === false ? START_OF_DATA : this.lastByte);
  this.outByteCount += out.length;
  this.push(out);
  this.lastByte = buf[buf.length - 1]!;
  done();
};

/** Feed `input` in the given pieces through a DataStream whose _transform is `fn`; bytes and counters out. */
function run(fn: TransformFn, pieces: Buffer[]): { bytes: Buffer; inCount: number; outCount: number } {
  const stream = new DataStream();
  const out: Buffer[] = [];
  const like = stream as unknown as DataStreamLike;
  like.push = (b: Buffer) => { out.push(b); return true; };
  for (const p of pieces) fn.call(stream, p, 'buffer', () => {});
  const flush = (stream as unknown as { _flush(done: () => void): void })._flush;
  flush.call(stream, () => {});
  return { bytes: Buffer.concat(out), inCount: like.inByteCount, outCount: like.outByteCount };
}

/** True when `fn` and `reference` agree on every self-check input, whole and cut at every offset. */
export function sameAsReference(fn: TransformFn, reference: TransformFn): boolean {
  for (const text of SELF_CHECK_INPUTS) {
    const input = Buffer.from(text, 'latin1');
    for (let cut = 0; cut <= input.length; cut++) {
      const pieces = [input.subarray(0, cut), input.subarray(cut)];
      const a = run(fn, pieces);
      const b = run(reference, pieces);
      if (!a.bytes.equals(b.bytes) || a.inCount !== b.inCount || a.outCount !== b.outCount) return false;
    }
  }
  return true;
}

let original: TransformFn | undefined;

/** Install the fast transform if nodemailer's stream is the one it was checked against. */
export function installFastDotStuffing(): InstallResult {
  const proto = DataStream.prototype as unknown as { _transform: TransformFn; _flush?: unknown };
  if (proto._transform === ours) return 'already';
  if (typeof proto._transform !== 'function' || typeof proto._flush !== 'function') return 'kept-nodemailer';
  const theirs = proto._transform;
  if (!sameAsReference(ours, theirs)) return 'kept-nodemailer';
  original = theirs;
  proto._transform = ours;
  return 'installed';
}

/** Tests: nodemailer's own transform (undefined before installation). */
export function nodemailerTransform(): TransformFn {
  const proto = DataStream.prototype as unknown as { _transform: TransformFn };
  return original ?? proto._transform;
}
