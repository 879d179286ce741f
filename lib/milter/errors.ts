/**
 * Typed errors of the milter layer: one class for everything a peer can get wrong on the wire
 * (framing, payloads, negotiation, command order), one for bad listen settings. Each carries a
 * stable code. Imports only util/errors.
 */
import { TdcError } from '../util/errors';

export type MilterProtocolErrorCode =
  | 'MILTER_FRAME_EMPTY' // a length field of 0
  | 'MILTER_FRAME_TOO_LARGE' // a length field above maxPacketBytes
  | 'MILTER_BAD_PAYLOAD' // a command whose payload does not parse
  | 'MILTER_UNKNOWN_COMMAND' // a command byte we do not know
  | 'MILTER_NEGOTIATION' // an OPTNEG we cannot accept
  | 'MILTER_SEQUENCE'; // a command that is illegal in the session's state

/** The MTA (or whatever is on the socket) broke the protocol; ends that connection only. */
export class MilterProtocolError extends TdcError {
  declare readonly code: MilterProtocolErrorCode;
  constructor(code: MilterProtocolErrorCode, message: string) {
    super(code, message);
  }
}

/** A `listen` string, socket mode or socket group we cannot use; the server does not start. */
export class MilterListenError extends TdcError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('MILTER_LISTEN', message, options);
  }
}
