/**
 * The milter wire protocol as a module: the socket server the composition root starts, plus the
 * codec pieces tests and tools use. Knows nothing of policies, config files or SMTP delivery and
 * must never import policy, config, journal, forwarder or app.
 */
export { startMilterServer, type MilterServer, type MilterServerOptions, type MilterStats } from './server';
export { parseListenAddress, formatListenAddress, type ListenAddress } from './listen-address';
export { MilterProtocolError, MilterListenError, type MilterProtocolErrorCode } from './errors';
export { FrameDecoder, FrameDecodeError, DEFAULT_MAX_PACKET_BYTES, type Frame } from './frame-decoder';
export { decodeCommand, type MilterCommand, type MilterCommandKind } from './command-decoder';
export { negotiate, expectsReply, JOURNAL_WANTS, CONTENT_FREE_WANTS, type Negotiated, type NegotiationWants, type OptnegOffer } from './negotiation';
export { MilterSession, type SessionState, type SessionOutput } from './session';
export * as codes from './codes';
export { mtaFacts, clientIpOf, macroKey, getMacro, type MilterMessage } from './mta-facts';
