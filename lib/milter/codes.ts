/**
 * Milter protocol constants, named and valued as in libmilter's mfdef.h/mfapi.h (checked against
 * Postfix milter8.c): command codes (SMFIC_*), reply codes (SMFIR_*), action flags (SMFIF_*),
 * protocol flags (SMFIP_*) and macro stages (SMFIM_*). Pure data; imports nothing.
 */

// ---- MTA -> milter commands (one ASCII byte each) ----
export const SMFIC_ABORT = 0x41; // 'A'
export const SMFIC_BODY = 0x42; // 'B'
export const SMFIC_CONNECT = 0x43; // 'C'
export const SMFIC_MACRO = 0x44; // 'D'
export const SMFIC_BODYEOB = 0x45; // 'E'
export const SMFIC_HELO = 0x48; // 'H'
export const SMFIC_QUIT_NC = 0x4b; // 'K'
export const SMFIC_HEADER = 0x4c; // 'L'
export const SMFIC_MAIL = 0x4d; // 'M'
export const SMFIC_EOH = 0x4e; // 'N'
export const SMFIC_OPTNEG = 0x4f; // 'O'
export const SMFIC_QUIT = 0x51; // 'Q'
export const SMFIC_RCPT = 0x52; // 'R'
export const SMFIC_DATA = 0x54; // 'T'
export const SMFIC_UNKNOWN = 0x55; // 'U'

// ---- milter -> MTA replies ----
export const SMFIR_ADDRCPT = 0x2b; // '+'
export const SMFIR_DELRCPT = 0x2d; // '-'
export const SMFIR_ADDRCPT_PAR = 0x32; // '2'
export const SMFIR_SHUTDOWN = 0x34; // '4'
export const SMFIR_ACCEPT = 0x61; // 'a'
export const SMFIR_REPLBODY = 0x62; // 'b'
export const SMFIR_CONTINUE = 0x63; // 'c'
export const SMFIR_DISCARD = 0x64; // 'd'
export const SMFIR_CHGFROM = 0x65; // 'e'
export const SMFIR_CONN_FAIL = 0x66; // 'f'
export const SMFIR_ADDHEADER = 0x68; // 'h'
export const SMFIR_INSHEADER = 0x69; // 'i'
export const SMFIR_SETSYMLIST = 0x6c; // 'l' (never a packet: lists travel in the OPTNEG reply)
export const SMFIR_CHGHEADER = 0x6d; // 'm'
export const SMFIR_PROGRESS = 0x70; // 'p'
export const SMFIR_QUARANTINE = 0x71; // 'q'
export const SMFIR_REJECT = 0x72; // 'r'
export const SMFIR_SKIP = 0x73; // 's'
export const SMFIR_TEMPFAIL = 0x74; // 't'
export const SMFIR_REPLYCODE = 0x79; // 'y'
/** The OPTNEG reply reuses the command code. */
export const SMFIR_OPTNEG = SMFIC_OPTNEG;

// ---- SMFIC_CONNECT address families ----
export const SMFIA_UNKNOWN = 0x55; // 'U'
export const SMFIA_UNIX = 0x4c; // 'L'
export const SMFIA_INET = 0x34; // '4'
export const SMFIA_INET6 = 0x36; // '6'

// ---- action flags (what the milter may do at end of body) ----
export const SMFIF_NONE = 0x000;
export const SMFIF_ADDHDRS = 0x001;
export const SMFIF_CHGBODY = 0x002;
export const SMFIF_MODBODY = SMFIF_CHGBODY;
export const SMFIF_ADDRCPT = 0x004;
export const SMFIF_DELRCPT = 0x008;
export const SMFIF_CHGHDRS = 0x010;
export const SMFIF_QUARANTINE = 0x020;
export const SMFIF_CHGFROM = 0x040;
export const SMFIF_ADDRCPT_PAR = 0x080;
export const SMFIF_SETSYMLIST = 0x100;
export const SMFI_V1_ACTS = 0x0f;
export const SMFI_V2_ACTS = 0x3f;
export const SMFI_CURR_ACTS = 0x1ff;

// ---- protocol flags ----
export const SMFIP_NOCONNECT = 0x00000001;
export const SMFIP_NOHELO = 0x00000002;
export const SMFIP_NOMAIL = 0x00000004;
export const SMFIP_NORCPT = 0x00000008;
export const SMFIP_NOBODY = 0x00000010;
export const SMFIP_NOHDRS = 0x00000020;
export const SMFIP_NOEOH = 0x00000040;
export const SMFIP_NR_HDR = 0x00000080;
export const SMFIP_NOHREPL = SMFIP_NR_HDR;
export const SMFIP_NOUNKNOWN = 0x00000100;
export const SMFIP_NODATA = 0x00000200;
export const SMFIP_SKIP = 0x00000400;
export const SMFIP_RCPT_REJ = 0x00000800;
export const SMFIP_NR_CONN = 0x00001000;
export const SMFIP_NR_HELO = 0x00002000;
export const SMFIP_NR_MAIL = 0x00004000;
export const SMFIP_NR_RCPT = 0x00008000;
export const SMFIP_NR_DATA = 0x00010000;
export const SMFIP_NR_UNKN = 0x00020000;
export const SMFIP_NR_EOH = 0x00040000;
export const SMFIP_NR_BODY = 0x00080000;
export const SMFIP_HDR_LEADSPC = 0x00100000;
export const SMFIP_MDS_256K = 0x10000000;
export const SMFIP_MDS_1M = 0x20000000;
/** Bits libmilter keeps for itself; never sent back to an MTA. */
export const SMFI_INTERNAL = 0x70000000;
export const SMFI_V1_PROT = 0x3f;
export const SMFI_V2_PROT = 0x7f;
export const SMFI_CURR_PROT = 0x1fffff;

// ---- macro stages (used in the OPTNEG reply's macro lists); note EOM < EOH ----
export const SMFIM_CONNECT = 0;
export const SMFIM_HELO = 1;
export const SMFIM_ENVFROM = 2;
export const SMFIM_ENVRCPT = 3;
export const SMFIM_DATA = 4;
export const SMFIM_EOM = 5;
export const SMFIM_EOH = 6;

// ---- protocol versions and sizes ----
/** The highest protocol version we speak. */
export const SMFI_PROT_VERSION = 6;
/** The lowest MTA version libmilter (and we) accept. */
export const SMFI_PROT_VERSION_MIN = 2;
/** Largest payload Sendmail reads from a milter; we never send more. */
export const MILTER_MAX_DATA_SIZE = 65535;
/** Payload of an OPTNEG packet: version, actions, protocol (u32 each). */
export const MILTER_OPTLEN = 12;

const COMMAND_NAMES: Record<number, string> = {
  [SMFIC_ABORT]: 'SMFIC_ABORT',
  [SMFIC_BODY]: 'SMFIC_BODY',
  [SMFIC_CONNECT]: 'SMFIC_CONNECT',
  [SMFIC_MACRO]: 'SMFIC_MACRO',
  [SMFIC_BODYEOB]: 'SMFIC_BODYEOB',
  [SMFIC_HELO]: 'SMFIC_HELO',
  [SMFIC_QUIT_NC]: 'SMFIC_QUIT_NC',
  [SMFIC_HEADER]: 'SMFIC_HEADER',
  [SMFIC_MAIL]: 'SMFIC_MAIL',
  [SMFIC_EOH]: 'SMFIC_EOH',
  [SMFIC_OPTNEG]: 'SMFIC_OPTNEG',
  [SMFIC_QUIT]: 'SMFIC_QUIT',
  [SMFIC_RCPT]: 'SMFIC_RCPT',
  [SMFIC_DATA]: 'SMFIC_DATA',
  [SMFIC_UNKNOWN]: 'SMFIC_UNKNOWN',
};

/** `SMFIC_BODY` for 0x42; `0x07` style hex for anything unknown (for log lines). */
export function commandName(code: number): string {
  return COMMAND_NAMES[code] ?? `unknown command 0x${code.toString(16).padStart(2, '0')}`;
}

/** Protocol flags as a hex string, e.g. `0x001fffff`. */
export function hex32(n: number): string {
  return `0x${(n >>> 0).toString(16).padStart(8, '0')}`;
}
