/**
 * Turns one frame from the MTA into a typed command (a discriminated union on `kind`). Strings stay
 * latin1 "byte strings"; body bytes stay views of the frame. A payload that does not parse is a
 * MilterProtocolError. Pure: no state, no sockets. Imports ./codes, ./errors, ./frame-decoder (type).
 */
import * as C from './codes';
import { MilterProtocolError } from './errors';
import type { Frame } from './frame-decoder';

/** latin1-decoded wire text: every character is one byte. */
export type ByteString = string;

export type ClientFamily = 'inet' | 'inet6' | 'unix' | 'unknown';

export type MilterCommand =
  | { kind: 'optneg'; version: number; actions: number; protocol: number }
  /** `forCode` is the command byte the macros precede (C, H, M, R, T, L, N, B, E, U). */
  | { kind: 'macro'; forCode: number; pairs: Array<[ByteString, ByteString]> }
  | { kind: 'connect'; hostname: ByteString; family: ClientFamily; port?: number; address?: ByteString }
  | { kind: 'helo'; name: ByteString }
  /** args[0] is the address as the MTA sent it (usually `<a@b>`), then ESMTP parameters. */
  | { kind: 'mail'; args: ByteString[] }
  | { kind: 'rcpt'; args: ByteString[] }
  | { kind: 'data' }
  | { kind: 'header'; name: ByteString; value: ByteString }
  | { kind: 'eoh' }
  | { kind: 'body'; chunk: Buffer }
  /** `chunk`: trailing bytes libmilter treats as a last body chunk (no MTA we know sends them). */
  | { kind: 'eob'; chunk?: Buffer }
  | { kind: 'abort' }
  | { kind: 'unknown'; line: ByteString }
  | { kind: 'quit' }
  | { kind: 'quit_nc' };

export type MilterCommandKind = MilterCommand['kind'];

// Commands without arguments are shared, frozen objects: no allocation per packet.
const DATA: MilterCommand = Object.freeze({ kind: 'data' });
const EOH: MilterCommand = Object.freeze({ kind: 'eoh' });
const EOB: MilterCommand = Object.freeze({ kind: 'eob' });
const ABORT: MilterCommand = Object.freeze({ kind: 'abort' });
const QUIT: MilterCommand = Object.freeze({ kind: 'quit' });
const QUIT_NC: MilterCommand = Object.freeze({ kind: 'quit_nc' });

function bad(message: string): never {
  throw new MilterProtocolError('MILTER_BAD_PAYLOAD', message);
}

function latin1(buf: Buffer, start: number, end: number): ByteString {
  return buf.toString('latin1', start, end);
}

/** One NUL-terminated string starting at `start`; returns [text, index after the NUL]. */
function cString(p: Buffer, start: number, what: string): [ByteString, number] {
  const nul = p.indexOf(0, start);
  if (nul < 0) bad(`${what}: string not NUL-terminated`);
  return [latin1(p, start, nul), nul + 1];
}

/** `str\0` repeated to the end of the payload (MAIL, RCPT). */
function argv(p: Buffer, what: string): ByteString[] {
  if (p.length === 0) bad(`${what}: empty payload (expected an address)`);
  if (p[p.length - 1] !== 0) bad(`${what}: last argument not NUL-terminated`);
  const out: ByteString[] = [];
  let start = 0;
  while (start < p.length) {
    const nul = p.indexOf(0, start);
    out.push(latin1(p, start, nul));
    start = nul + 1;
  }
  return out;
}

/** A single `str\0` payload (HELO, UNKNOWN); bytes after the first NUL are ignored. */
function single(p: Buffer, what: string): ByteString {
  return cString(p, 0, what)[0];
}

/** Client address as libmilter hands it on: no `IPv6:` prefix (Sendmail), no brackets. */
export function cleanAddress(raw: ByteString): ByteString {
  let a = raw;
  if (a.length > 5 && a.slice(0, 5).toLowerCase() === 'ipv6:') a = a.slice(5);
  if (a.length >= 2 && a.startsWith('[') && a.endsWith(']')) a = a.slice(1, -1);
  if (a.length > 5 && a.slice(0, 5).toLowerCase() === 'ipv6:') a = a.slice(5);
  return a;
}

function connect(p: Buffer): MilterCommand {
  const [hostname, at] = cString(p, 0, 'SMFIC_CONNECT hostname');
  if (at >= p.length) bad('SMFIC_CONNECT: no address family after the hostname');
  const fam = p[at]!;
  if (fam === C.SMFIA_UNKNOWN) return { kind: 'connect', hostname, family: 'unknown' };
  let family: ClientFamily;
  if (fam === C.SMFIA_INET) family = 'inet';
  else if (fam === C.SMFIA_INET6) family = 'inet6';
  else if (fam === C.SMFIA_UNIX) family = 'unix';
  else bad(`SMFIC_CONNECT: unknown address family 0x${fam.toString(16).padStart(2, '0')}`);
  if (p.length < at + 3) bad('SMFIC_CONNECT: port missing');
  const port = p.readUInt16BE(at + 1);
  const [raw] = cString(p, at + 3, 'SMFIC_CONNECT address');
  const address = family === 'unix' ? raw : cleanAddress(raw);
  if (family === 'unix') return { kind: 'connect', hostname, family, address };
  return { kind: 'connect', hostname, family, port, address };
}

function header(p: Buffer): MilterCommand {
  const nul1 = p.indexOf(0);
  if (nul1 < 0) bad('SMFIC_HEADER: name not NUL-terminated');
  if (nul1 === 0) bad('SMFIC_HEADER: empty header name');
  const nul2 = p.indexOf(0, nul1 + 1);
  if (nul2 < 0) bad('SMFIC_HEADER: value not NUL-terminated');
  if (nul2 !== p.length - 1) bad(`SMFIC_HEADER: ${p.length - 1 - nul2} bytes after the value (expected exactly name and value)`);
  return { kind: 'header', name: latin1(p, 0, nul1), value: latin1(p, nul1 + 1, nul2) };
}

function macro(p: Buffer): MilterCommand {
  if (p.length === 0) bad('SMFIC_MACRO: empty payload (expected a command code)');
  const pairs: Array<[ByteString, ByteString]> = [];
  let start = 1;
  const end = p.length;
  while (start < end) {
    let nul = p.indexOf(0, start);
    if (nul < 0) nul = end; // tolerate a missing final NUL
    const name = latin1(p, start, nul);
    start = nul + 1;
    if (start >= end) {
      pairs.push([name, '']); // odd count: the last value is empty
      break;
    }
    let vnul = p.indexOf(0, start);
    if (vnul < 0) vnul = end;
    pairs.push([name, latin1(p, start, vnul)]);
    start = vnul + 1;
  }
  return { kind: 'macro', forCode: p[0]!, pairs };
}

/** Decode one MTA->milter frame. Throws MilterProtocolError for unknown codes and bad payloads. */
export function decodeCommand(frame: Frame): MilterCommand {
  const p = frame.payload;
  switch (frame.code) {
    case C.SMFIC_MACRO:
      return macro(p);
    case C.SMFIC_BODY:
      return { kind: 'body', chunk: p };
    case C.SMFIC_HEADER:
      return header(p);
    case C.SMFIC_BODYEOB:
      return p.length === 0 ? EOB : { kind: 'eob', chunk: p };
    case C.SMFIC_ABORT:
      return ABORT;
    case C.SMFIC_RCPT:
      return { kind: 'rcpt', args: argv(p, 'SMFIC_RCPT') };
    case C.SMFIC_MAIL:
      return { kind: 'mail', args: argv(p, 'SMFIC_MAIL') };
    case C.SMFIC_DATA:
      return DATA;
    case C.SMFIC_EOH:
      return EOH;
    case C.SMFIC_CONNECT:
      return connect(p);
    case C.SMFIC_HELO:
      return { kind: 'helo', name: single(p, 'SMFIC_HELO') };
    case C.SMFIC_OPTNEG:
      if (p.length < C.MILTER_OPTLEN) bad(`SMFIC_OPTNEG: payload of ${p.length} bytes (expected at least ${C.MILTER_OPTLEN})`);
      return { kind: 'optneg', version: p.readUInt32BE(0), actions: p.readUInt32BE(4), protocol: p.readUInt32BE(8) };
    case C.SMFIC_UNKNOWN:
      return { kind: 'unknown', line: single(p, 'SMFIC_UNKNOWN') };
    case C.SMFIC_QUIT:
      return QUIT;
    case C.SMFIC_QUIT_NC:
      return QUIT_NC;
    default:
      throw new MilterProtocolError('MILTER_UNKNOWN_COMMAND', `${C.commandName(frame.code)} (${p.length} payload bytes)`);
  }
}
