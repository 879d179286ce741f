/**
 * SMFIC_OPTNEG answer by libmilter's rules for a read-only journaling milter: version min(offer, 6),
 * actions only SETSYMLIST and only if offered, wanted NO.../NR_... bits masked by the offer; every
 * NR_ bit not granted is a stage we answer ourselves. Pure; imports ./codes, ./errors, types only.
 */
import * as C from './codes';
import { MilterProtocolError } from './errors';
import type { MacroList } from './reply-encoder';

export interface OptnegOffer {
  version: number;
  actions: number;
  protocol: number;
}

/** What we ask of the MTA; the defaults suit journaling. */
export interface NegotiationWants {
  /** Protocol bits wanted (masked by the offer before use). */
  protocol: number;
  /** Macro lists sent when the MTA offers SMFIF_SETSYMLIST at version 6. */
  macroLists: readonly MacroList[];
}

/**
 * Skip what we never use (DATA, UNKNOWN), keep header values exact, and ask the MTA not to wait for
 * a reply anywhere but end of body. HELO is kept (journals may show it) at no round-trip cost.
 */
export const JOURNAL_PROTOCOL_WANTS =
  C.SMFIP_NODATA |
  C.SMFIP_NOUNKNOWN |
  C.SMFIP_HDR_LEADSPC |
  C.SMFIP_NR_CONN |
  C.SMFIP_NR_HELO |
  C.SMFIP_NR_MAIL |
  C.SMFIP_NR_RCPT |
  C.SMFIP_NR_DATA |
  C.SMFIP_NR_UNKN |
  C.SMFIP_NR_HDR |
  C.SMFIP_NR_EOH |
  C.SMFIP_NR_BODY;

/** Per-stage macro lists (Postfix treats an empty list as "your defaults", so none is empty). */
export const JOURNAL_MACRO_LISTS: readonly MacroList[] = Object.freeze([
  { stage: C.SMFIM_CONNECT, names: 'j {daemon_name} {daemon_addr} {daemon_port} {client_addr} {client_port} {client_name} _' },
  { stage: C.SMFIM_ENVFROM, names: 'i {auth_type} {auth_authen} {auth_author} {mail_addr}' },
  { stage: C.SMFIM_ENVRCPT, names: 'i {rcpt_addr}' },
  { stage: C.SMFIM_EOM, names: 'i' },
  { stage: C.SMFIM_EOH, names: 'i' },
]);

export const JOURNAL_WANTS: NegotiationWants = Object.freeze({
  protocol: JOURNAL_PROTOCOL_WANTS,
  macroLists: JOURNAL_MACRO_LISTS,
});

/**
 * While journaling is off there is nothing to read: the MTA is asked not to send headers or body
 * at all, which spares it and us the bulk of a milter's cost (Postfix still sends the envelope and
 * asks for the end-of-body reply). A connection keeps what it negotiated: after a reload that turns
 * journaling on, the MTA's *next* milter connection brings content again.
 */
export const CONTENT_FREE_WANTS: NegotiationWants = Object.freeze({
  protocol: JOURNAL_PROTOCOL_WANTS | C.SMFIP_NOHDRS | C.SMFIP_NOEOH | C.SMFIP_NOBODY,
  macroLists: JOURNAL_MACRO_LISTS,
});

/** Every NR_* bit (NR_HDR included). */
export const ALL_NO_REPLY_BITS =
  C.SMFIP_NR_CONN | C.SMFIP_NR_HELO | C.SMFIP_NR_MAIL | C.SMFIP_NR_RCPT | C.SMFIP_NR_DATA |
  C.SMFIP_NR_UNKN | C.SMFIP_NR_HDR | C.SMFIP_NR_EOH | C.SMFIP_NR_BODY;

export interface Negotiated {
  /** The MTA's offer after libmilter's defaults for zero masks. */
  offer: OptnegOffer;
  /** What we reply: version, actions, protocol (a subset of the offer), macro lists. */
  version: number;
  actions: number;
  protocol: number;
  macroLists: readonly MacroList[];
  /** Header values keep their leading whitespace (SMFIP_HDR_LEADSPC granted). */
  headerLeadingSpace: boolean;
  /** The MTA agreed not to send headers or body (SMFIP_NOHDRS or SMFIP_NOBODY granted). */
  withoutContent: boolean;
}

/** Answer an OPTNEG offer. Throws MilterProtocolError (MILTER_NEGOTIATION) for versions below 2. */
export function negotiate(offer: OptnegOffer, wants: NegotiationWants = JOURNAL_WANTS): Negotiated {
  if (offer.version < C.SMFI_PROT_VERSION_MIN) {
    throw new MilterProtocolError(
      'MILTER_NEGOTIATION',
      `MTA offers milter protocol version ${offer.version}; version ${C.SMFI_PROT_VERSION_MIN} or later is required`,
    );
  }
  const version = Math.min(offer.version, C.SMFI_PROT_VERSION);
  const offeredActions = offer.actions === 0 ? C.SMFI_V1_ACTS : offer.actions >>> 0;
  const offeredProtocol = offer.protocol === 0 ? C.SMFI_V1_PROT : offer.protocol >>> 0;
  // Macro lists are a version-6 feature riding on the SETSYMLIST action.
  const symlists = version >= 6 && (offeredActions & C.SMFIF_SETSYMLIST) !== 0 && wants.macroLists.length > 0;
  const actions = symlists ? C.SMFIF_SETSYMLIST : C.SMFIF_NONE;
  const protocol = (wants.protocol & ~C.SMFI_INTERNAL & offeredProtocol) >>> 0;
  return {
    offer: { version: offer.version, actions: offeredActions, protocol: offeredProtocol },
    version,
    actions,
    protocol,
    macroLists: symlists ? wants.macroLists : [],
    headerLeadingSpace: (protocol & C.SMFIP_HDR_LEADSPC) !== 0,
    withoutContent: (protocol & (C.SMFIP_NOHDRS | C.SMFIP_NOBODY)) !== 0,
  };
}

/** True when we must answer this command (its NR_* bit was not granted). Never for D, A, Q, K. */
export function expectsReply(protocol: number, code: number): boolean {
  switch (code) {
    case C.SMFIC_CONNECT: return (protocol & C.SMFIP_NR_CONN) === 0;
    case C.SMFIC_HELO: return (protocol & C.SMFIP_NR_HELO) === 0;
    case C.SMFIC_MAIL: return (protocol & C.SMFIP_NR_MAIL) === 0;
    case C.SMFIC_RCPT: return (protocol & C.SMFIP_NR_RCPT) === 0;
    case C.SMFIC_DATA: return (protocol & C.SMFIP_NR_DATA) === 0;
    case C.SMFIC_UNKNOWN: return (protocol & C.SMFIP_NR_UNKN) === 0;
    case C.SMFIC_HEADER: return (protocol & C.SMFIP_NR_HDR) === 0;
    case C.SMFIC_EOH: return (protocol & C.SMFIP_NR_EOH) === 0;
    case C.SMFIC_BODY: return (protocol & C.SMFIP_NR_BODY) === 0;
    case C.SMFIC_BODYEOB: return true;
    case C.SMFIC_OPTNEG: return true;
    default: return false;
  }
}
