/**
 * fast-check generators of milter traffic for the fuzz specs: packets of every command kind with
 * hostile strings (NUL, CR, LF, 8-bit), random codes and payloads, raw garbage, and well-formed
 * transactions. Test support only: imports nothing from lib/.
 */
import fc from 'fast-check';
import { argvPacket, connectPacket, headerPacket, macroPacket, optnegPacket, packet, POSTFIX_OFFER } from './milter-client';

const CODES = 'ABCDEHKLMNOQRTU'.split('');

export const bytes = (max: number) => fc.uint8Array({ maxLength: max }).map((a) => Buffer.from(a));
export const text = fc.string({ maxLength: 24, unit: fc.constantFrom('a', 'b', '@', '<', '>', ' ', '\0', '\r', '\n', '\xff', 'é', ':') });

/** One packet: mostly well-formed commands, some with random payloads or codes, some raw garbage. */
export const anyPacket: fc.Arbitrary<Buffer> = fc.oneof(
  { weight: 2, arbitrary: fc.constant(optnegPacket(POSTFIX_OFFER)) },
  { weight: 1, arbitrary: fc.tuple(fc.nat(10), fc.nat(), fc.nat()).map(([v, a, p]) => optnegPacket({ version: v, actions: a, protocol: p })) },
  { weight: 2, arbitrary: fc.tuple(fc.constantFrom(...'CHMRTLNEU'.split('')), fc.array(fc.tuple(text, text), { maxLength: 4 })).map(([c, pairs]) => macroPacket(c, pairs)) },
  { weight: 2, arbitrary: fc.tuple(text, fc.constantFrom('4' as const, '6' as const, 'L' as const, 'U' as const), fc.nat(65535), text).map(([h, f, p, a]) => connectPacket(h, f, p, a)) },
  { weight: 2, arbitrary: text.map((h) => packet('H', Buffer.from(`${h}\0`, 'latin1'))) },
  { weight: 3, arbitrary: fc.tuple(fc.constantFrom('M' as const, 'R' as const), fc.array(text, { minLength: 1, maxLength: 3 })).map(([c, a]) => argvPacket(c, a)) },
  { weight: 3, arbitrary: fc.tuple(text, text).map(([n, v]) => headerPacket(n, v)) },
  { weight: 3, arbitrary: bytes(300).map((b) => packet('B', b)) },
  { weight: 2, arbitrary: fc.constantFrom('T', 'N', 'E', 'A', 'Q', 'K').map((c) => packet(c)) },
  { weight: 1, arbitrary: fc.tuple(fc.constantFrom(...CODES), bytes(40)).map(([c, b]) => packet(c, b)) },
  { weight: 1, arbitrary: bytes(40) },
);

/** A well-formed transaction with hostile strings and bodies (so the fuzz reaches end-of-body). */
export const transaction: fc.Arbitrary<Buffer> = fc
  .tuple(text, fc.array(text, { minLength: 1, maxLength: 3 }), fc.array(fc.tuple(text, text), { maxLength: 4 }), fc.array(bytes(400), { maxLength: 4 }))
  .map(([from, rcpts, headers, body]) => Buffer.concat([
    argvPacket('M', [`<${from}>`]), ...rcpts.map((r) => argvPacket('R', [`<${r}>`])), ...headers.map(([n, v]) => headerPacket(n, v)),
    packet('N'), ...body.map((b) => packet('B', b)), packet('E'),
  ]));

