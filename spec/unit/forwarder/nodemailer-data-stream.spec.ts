/**
 * The nodemailer DataStream patch of the old delivery path (nodemailer-data-stream.ts): installed
 * only after its self-check, then the same bytes and counters as nodemailer's own transform. Goes
 * with that file when the lead wires lib/smtp in its place (issue 11).
 */
import { PassThrough, Readable } from 'node:stream';
import DataStream from 'nodemailer/lib/smtp-connection/data-stream';
import { installFastDotStuffing, nodemailerTransform, sameAsReference, type TransformFn } from '../../../lib/forwarder/nodemailer-data-stream';
import { through } from '../../support/nodemailer-oracle';

const reference = nodemailerTransform();
installFastDotStuffing();
const installed = (DataStream.prototype as unknown as { _transform: TransformFn })._transform;

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
