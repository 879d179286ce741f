/**
 * Typed errors of the SMTP client layer: what a server can get wrong on the wire (a reply that does
 * not parse, a line over the cap, a reply nobody asked for). Each carries a stable code; the
 * delivery agent's classifier maps them onto the retry table. Imports only util/errors.
 */
import { TdcError } from '../util/errors';

export type SmtpProtocolErrorCode =
  | 'SMTP_REPLY_MALFORMED'   // not "ddd", "ddd text" or "ddd-text", or a first digit outside 2-5
  | 'SMTP_REPLY_TOO_LONG'    // a reply line over the cap, or too many lines in one reply
  | 'SMTP_REPLY_CODE_CHANGE' // a multi-line reply whose lines carry different codes
  | 'SMTP_UNEXPECTED_REPLY'; // a reply while the client waits for none

/** The server broke the protocol; ends that connection only (a network-class, soft failure). */
export class SmtpProtocolError extends TdcError {
  declare readonly code: SmtpProtocolErrorCode;
  constructor(code: SmtpProtocolErrorCode, message: string) {
    super(code, message);
  }
}
