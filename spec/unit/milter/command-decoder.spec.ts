import { decodeCommand, cleanAddress, type MilterCommand } from '../../../lib/milter/command-decoder';
import { FrameDecoder, type Frame } from '../../../lib/milter/frame-decoder';
import { MilterProtocolError } from '../../../lib/milter/errors';
import { pkt, postfixFirstMessage, postfixRest, traceBody, POSTFIX_FIRST_BODY } from '../../fixtures/milter/postfix-trace';

/** JSON-comparable form of a command (buffers as latin1 text). */
function plain(c: MilterCommand): unknown {
  if (c.kind === 'body') return { kind: 'body', chunk: c.chunk.toString('latin1') };
  if (c.kind === 'eob' && c.chunk) return { kind: 'eob', chunk: c.chunk.toString('latin1') };
  return { ...c };
}

function one(bytes: Buffer): MilterCommand {
  const frames = new FrameDecoder().push(bytes);
  expect(frames).toHaveLength(1);
  return decodeCommand(frames[0]!);
}

function decodeAll(stream: Buffer, cuts: number[]): unknown[] {
  const d = new FrameDecoder();
  const out: unknown[] = [];
  let prev = 0;
  for (const c of [...cuts, stream.length]) {
    for (const f of d.push(stream.subarray(prev, c))) out.push(plain(decodeCommand(f)));
    prev = c;
  }
  return out;
}

function expectBad(bytes: Buffer, pattern: RegExp, code = 'MILTER_BAD_PAYLOAD'): void {
  let err: unknown;
  try {
    one(bytes);
  } catch (e) {
    err = e;
  }
  expect(err).toBeInstanceOf(MilterProtocolError);
  expect((err as MilterProtocolError).code).toBe(code);
  expect((err as Error).message).toMatch(pattern);
}

describe('decodeCommand: Postfix 3.7.11 trace fixtures', () => {
  const entries = [...postfixFirstMessage(), ...postfixRest()];

  it('rebuilds every packet with the length the trace shows', () => {
    for (const e of entries) expect(e.bytes.readUInt32BE(0)).toBe(e.len);
  });

  it('decodes the trace packets to the expected commands', () => {
    const cmds = entries.map((e) => one(e.bytes));
    expect(cmds[0]).toEqual({ kind: 'optneg', version: 6, actions: 0x1ff, protocol: 0x1fffff });
    expect(cmds[1]).toEqual({
      kind: 'macro',
      forCode: 0x43,
      pairs: [['j', 'mta.test.local'], ['{daemon_name}', 'mta.test.local'], ['{daemon_addr}', '127.0.0.1'], ['v', 'Postfix 3.7.11'], ['_', 'localhost [127.0.0.1]']],
    });
    expect(cmds[2]).toEqual({ kind: 'connect', hostname: 'localhost', family: 'inet', port: 0xbd22, address: '127.0.0.1' });
    expect(cmds[3]).toEqual({ kind: 'macro', forCode: 0x48, pairs: [] });
    expect(cmds[4]).toEqual({ kind: 'helo', name: 'client.example' });
    expect(cmds[6]).toEqual({ kind: 'mail', args: ['<alice@example.org>', 'SIZE=120000', 'BODY=8BITMIME'] });
    expect(cmds[8]).toEqual({ kind: 'rcpt', args: ['<bob@test.local>', 'NOTIFY=NEVER'] });
    expect(cmds[10]).toEqual({ kind: 'rcpt', args: ['<carol@test.local>'] });
    expect(cmds[12]).toEqual({ kind: 'data' });
    const headers = cmds.filter((c) => c.kind === 'header').slice(0, 8);
    expect(headers).toEqual([
      { kind: 'header', name: 'Received', value: 'from fake.example (fake [192.0.2.9]) by upstream; Mon, 1 Jan 2024 00:00:00 +0000' },
      { kind: 'header', name: 'From', value: 'Alice <alice@example.org>' },
      { kind: 'header', name: 'To', value: ' bob@test.local' },
      { kind: 'header', name: 'Subject', value: 'no-space' },
      { kind: 'header', name: 'X-Folded', value: 'first part\n\tsecond part\n  third part' },
      { kind: 'header', name: 'X-Empty', value: '' },
      { kind: 'header', name: 'Message-ID', value: '<m1@example.org>' },
      { kind: 'header', name: 'Date', value: 'Mon, 23 Nov 2026 18:32:43 +0000 (UTC)' },
    ]);
    const bodies = cmds.filter((c): c is Extract<MilterCommand, { kind: 'body' }> => c.kind === 'body');
    expect(Buffer.concat(bodies.slice(0, 2).map((b) => b.chunk)).equals(POSTFIX_FIRST_BODY)).toBe(true);
    expect(bodies[2]!.chunk.toString('latin1')).toBe('short body\r\n');
    const kinds = cmds.map((c) => c.kind);
    expect(kinds.filter((k) => k === 'eob')).toHaveLength(2);
    expect(kinds.slice(-4)).toEqual(['eob', 'abort', 'abort', 'quit']);
    expect(cmds).toContainEqual({ kind: 'mail', args: ['<>'] });
    expect(cmds).toContainEqual({ kind: 'unknown', line: 'XFOO' });
    expect(cmds).toContainEqual({
      kind: 'macro', forCode: 0x4d, pairs: [['{mail_addr}', ''], ['{mail_host}', 'mta.test.local'], ['{mail_mailer}', 'discard']],
    });
  });

  it('decodes the same commands from the session stream split at every offset', () => {
    const small = [...postfixFirstMessage([traceBody(300)]), ...postfixRest()];
    const stream = Buffer.concat(small.map((e) => e.bytes));
    const whole = decodeAll(stream, []);
    expect(whole).toHaveLength(small.length);
    for (let cut = 1; cut < stream.length; cut++) {
      const got = decodeAll(stream, [cut]);
      if (JSON.stringify(got) !== JSON.stringify(whole)) expect({ cut, got }).toEqual({ cut, got: whole });
    }
  });

  it('decodes the same commands from the full stream (110 KB body) fed one byte at a time', () => {
    const stream = Buffer.concat([...postfixFirstMessage(), ...postfixRest()].map((e) => e.bytes));
    const whole = decodeAll(stream, []);
    const d = new FrameDecoder();
    const got: unknown[] = [];
    for (let i = 0; i < stream.length; i++) {
      for (const f of d.push(stream.subarray(i, i + 1))) got.push(plain(decodeCommand(f)));
    }
    expect(got).toEqual(whole);
  });
});

describe('decodeCommand: macros', () => {
  it('accepts zero pairs', () => {
    expect(one(pkt('D', 'E'))).toEqual({ kind: 'macro', forCode: 0x45, pairs: [] });
  });
  it('treats an odd count as an empty last value', () => {
    expect(one(pkt('D', 'Mi\0Q1\0{auth_type}\0'))).toEqual({ kind: 'macro', forCode: 0x4d, pairs: [['i', 'Q1'], ['{auth_type}', '']] });
  });
  it('keeps empty values and raw 8-bit bytes', () => {
    expect(one(pkt('D', 'C_\0\0{x}\0caf\xe9\0'))).toEqual({ kind: 'macro', forCode: 0x43, pairs: [['_', ''], ['{x}', 'caf\xe9']] });
  });
  it('rejects an empty payload', () => {
    expectBad(pkt('D'), /SMFIC_MACRO: empty payload/);
  });
});

describe('decodeCommand: connect', () => {
  const port = (n: number): string => String.fromCharCode(n >> 8, n & 0xff);
  it('decodes IPv6 with Sendmail\'s IPv6: prefix', () => {
    expect(one(pkt('C', `localhost\x006${port(25)}IPv6:2001:db8::1\0`))).toEqual({
      kind: 'connect', hostname: 'localhost', family: 'inet6', port: 25, address: '2001:db8::1',
    });
  });
  it('strips brackets', () => {
    expect(one(pkt('C', `[192.0.2.1]\x004${port(1)}[192.0.2.1]\0`))).toMatchObject({ hostname: '[192.0.2.1]', address: '192.0.2.1' });
    expect(cleanAddress('[IPv6:::1]')).toBe('::1');
    expect(cleanAddress('ipv6:::1')).toBe('::1');
  });
  it('decodes unix and unknown families', () => {
    expect(one(pkt('C', `localhost\0L${port(0)}/var/run/x.sock\0`))).toEqual({
      kind: 'connect', hostname: 'localhost', family: 'unix', address: '/var/run/x.sock',
    });
    expect(one(pkt('C', 'localhost\0U'))).toEqual({ kind: 'connect', hostname: 'localhost', family: 'unknown' });
  });
  it('rejects malformed payloads', () => {
    expectBad(pkt('C', 'localhost'), /hostname: string not NUL-terminated/);
    expectBad(pkt('C', 'localhost\0'), /no address family/);
    expectBad(pkt('C', 'localhost\0X\0\x00127.0.0.1\0'), /unknown address family 0x58/);
    expectBad(pkt('C', 'localhost\x004\0'), /port missing/);
    expectBad(pkt('C', `localhost\x004${port(25)}127.0.0.1`), /address: string not NUL-terminated/);
  });
});

describe('decodeCommand: headers', () => {
  it('parses exactly two NUL-terminated fields; empty value ok', () => {
    expect(one(pkt('L', 'X-Empty\0\0'))).toEqual({ kind: 'header', name: 'X-Empty', value: '' });
    expect(one(pkt('L', 'X\0 a\n\tb\0'))).toEqual({ kind: 'header', name: 'X', value: ' a\n\tb' });
  });
  it('rejects anything else', () => {
    expectBad(pkt('L', 'X-Empty'), /name not NUL-terminated/);
    expectBad(pkt('L', 'X-Empty\0value'), /value not NUL-terminated/);
    expectBad(pkt('L', 'X\0a\0b\0'), /2 bytes after the value/);
    expectBad(pkt('L', '\0value\0'), /empty header name/);
  });
});

describe('decodeCommand: the rest', () => {
  it('MAIL and RCPT need NUL-terminated arguments', () => {
    expect(one(pkt('M', '\0'))).toEqual({ kind: 'mail', args: [''] });
    expectBad(pkt('M'), /SMFIC_MAIL: empty payload/);
    expectBad(pkt('R', '<a@b>'), /SMFIC_RCPT: last argument not NUL-terminated/);
  });
  it('HELO and UNKNOWN carry one string', () => {
    expect(one(pkt('U', 'XFOO some args\0'))).toEqual({ kind: 'unknown', line: 'XFOO some args' });
    expectBad(pkt('H', 'client'), /SMFIC_HELO: string not NUL-terminated/);
  });
  it('OPTNEG needs 12 bytes; extra bytes are ignored', () => {
    expectBad(pkt('O', Buffer.alloc(11)), /SMFIC_OPTNEG: payload of 11 bytes/);
    expect(one(pkt('O', Buffer.from('000000060000000000000000ffff', 'hex')))).toEqual({ kind: 'optneg', version: 6, actions: 0, protocol: 0 });
  });
  it('empty commands', () => {
    expect(['A', 'T', 'N', 'E', 'Q', 'K'].map((c) => one(pkt(c)).kind)).toEqual(['abort', 'data', 'eoh', 'eob', 'quit', 'quit_nc']);
  });
  it('a body may hold any bytes, NUL included', () => {
    const c = one(pkt('B', Buffer.from([0, 0, 10]))) as Extract<MilterCommand, { kind: 'body' }>;
    expect([...c.chunk]).toEqual([0, 0, 10]);
  });
  it('end of body with trailing data carries it as a last chunk', () => {
    expect(plain(one(pkt('E', 'tail')))).toEqual({ kind: 'eob', chunk: 'tail' });
  });
  it('an unknown command byte is a typed error', () => {
    expectBad(pkt('Z', 'x'), /unknown command 0x5a \(1 payload bytes\)/, 'MILTER_UNKNOWN_COMMAND');
    const f: Frame = { code: 0x07, payload: Buffer.alloc(0) };
    expect(() => decodeCommand(f)).toThrow(/unknown command 0x07/);
  });
});
