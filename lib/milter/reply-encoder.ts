/**
 * Encodes milter -> MTA replies. Payload-less replies are pre-built constant buffers; every packet
 * is checked against the 65535-byte payload limit Sendmail enforces. Pure; imports ./codes only.
 */
import * as C from './codes';

export interface MacroList {
  /** SMFIM_* stage. */
  stage: number;
  /** Space-separated macro names, e.g. `i {auth_type}`. */
  names: string;
}

/** One packet: u32 length (code + payload), u8 code, payload. */
export function encodePacket(code: number, payload?: Buffer): Buffer {
  const n = payload === undefined ? 0 : payload.length;
  if (n > C.MILTER_MAX_DATA_SIZE) {
    throw new RangeError(`milter reply payload of ${n} bytes exceeds ${C.MILTER_MAX_DATA_SIZE}`);
  }
  const out = Buffer.allocUnsafe(5 + n);
  out.writeUInt32BE(n + 1, 0);
  out[4] = code;
  if (payload !== undefined) payload.copy(out, 5);
  return out;
}

function constant(code: number): Buffer {
  return encodePacket(code);
}

/** SMFIR_CONTINUE: go on (at end of body: accept). Shared; never modify. */
export const REPLY_CONTINUE: Buffer = constant(C.SMFIR_CONTINUE);
/** SMFIR_ACCEPT: accept the message (or, at CONNECT/HELO, the whole session) without more events. */
export const REPLY_ACCEPT: Buffer = constant(C.SMFIR_ACCEPT);
/** SMFIR_PROGRESS: keep-alive while end-of-body work runs. */
export const REPLY_PROGRESS: Buffer = constant(C.SMFIR_PROGRESS);
export const REPLY_TEMPFAIL: Buffer = constant(C.SMFIR_TEMPFAIL);
export const REPLY_REJECT: Buffer = constant(C.SMFIR_REJECT);

/** The OPTNEG reply: version, actions, protocol, then optional macro lists. */
export function encodeOptnegReply(version: number, actions: number, protocol: number, macroLists: readonly MacroList[] = []): Buffer {
  let size = C.MILTER_OPTLEN;
  for (const m of macroLists) size += 4 + Buffer.byteLength(m.names, 'latin1') + 1;
  const payload = Buffer.alloc(size);
  payload.writeUInt32BE(version >>> 0, 0);
  payload.writeUInt32BE(actions >>> 0, 4);
  payload.writeUInt32BE(protocol >>> 0, 8);
  let off = C.MILTER_OPTLEN;
  for (const m of macroLists) {
    payload.writeUInt32BE(m.stage >>> 0, off);
    off += 4;
    off += payload.write(m.names, off, 'latin1');
    payload[off++] = 0; // NUL terminator
  }
  return encodePacket(C.SMFIR_OPTNEG, payload);
}

/** SMFIR_REPLYCODE, e.g. `451 4.7.1 try later` (text must already follow the SMTP rules). */
export function encodeReplyCode(text: string): Buffer {
  return encodePacket(C.SMFIR_REPLYCODE, Buffer.from(`${text}\0`, 'latin1'));
}

/** SMFIR_ADDHEADER (only legal at end of body with SMFIF_ADDHDRS negotiated). */
export function encodeAddHeader(name: string, value: string): Buffer {
  return encodePacket(C.SMFIR_ADDHEADER, Buffer.from(`${name}\0${value}\0`, 'latin1'));
}

/** Several replies for one write: one buffer, one copy. */
export function joinReplies(replies: readonly Buffer[]): Buffer | undefined {
  if (replies.length === 0) return undefined;
  if (replies.length === 1) return replies[0];
  return Buffer.concat(replies as Buffer[]);
}
