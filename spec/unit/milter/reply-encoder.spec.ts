import { encodeOptnegReply, encodePacket, encodeReplyCode, encodeAddHeader, joinReplies, REPLY_CONTINUE, REPLY_ACCEPT, REPLY_PROGRESS } from '../../../lib/milter/reply-encoder';

const hex = (b: Buffer | undefined): string => (b === undefined ? 'undefined' : b.toString('hex'));

describe('reply encoder', () => {
  it('encodes payload-less replies as 5 bytes', () => {
    expect(hex(REPLY_CONTINUE)).toBe('0000000163');
    expect(hex(REPLY_ACCEPT)).toBe('0000000161');
    expect(hex(REPLY_PROGRESS)).toBe('0000000170');
  });

  it('encodes the OPTNEG reply without macro lists', () => {
    expect(hex(encodeOptnegReply(6, 0x100, 0x1cd382))).toBe('0000000d4f' + '00000006' + '00000100' + '001cd382');
  });

  it('appends macro lists as u32 stage + names + NUL', () => {
    const b = encodeOptnegReply(6, 0x100, 0, [{ stage: 0, names: 'j _' }, { stage: 5, names: 'i' }]);
    const payload = Buffer.concat([
      Buffer.from('000000060000010000000000', 'hex'),
      Buffer.from('00000000', 'hex'), Buffer.from('j _\0', 'latin1'),
      Buffer.from('00000005', 'hex'), Buffer.from('i\0', 'latin1'),
    ]);
    expect(b.readUInt32BE(0)).toBe(payload.length + 1);
    expect(String.fromCharCode(b[4]!)).toBe('O');
    expect(b.subarray(5).equals(payload)).toBe(true);
  });

  it('encodes string replies NUL-terminated', () => {
    expect(encodeReplyCode('451 4.7.1 later').subarray(4).toString('latin1')).toBe('y451 4.7.1 later\0');
    expect(encodeAddHeader('X-A', ' b').subarray(4).toString('latin1')).toBe('hX-A\0 b\0');
  });

  it('never sends a payload above 65535 bytes', () => {
    expect(encodePacket(0x62, Buffer.alloc(65535)).length).toBe(65540);
    expect(() => encodePacket(0x62, Buffer.alloc(65536))).toThrow(/65536 bytes exceeds 65535/);
  });

  it('joins several replies into one buffer for one write', () => {
    expect(joinReplies([])).toBeUndefined();
    expect(joinReplies([REPLY_CONTINUE])).toBe(REPLY_CONTINUE);
    expect(hex(joinReplies([REPLY_PROGRESS, REPLY_CONTINUE]))).toBe('00000001700000000163');
  });
});
