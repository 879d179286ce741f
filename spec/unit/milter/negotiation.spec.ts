import * as C from '../../../lib/milter/codes';
import { negotiate, expectsReply, JOURNAL_PROTOCOL_WANTS, ALL_NO_REPLY_BITS } from '../../../lib/milter/negotiation';
import { MilterProtocolError } from '../../../lib/milter/errors';

const REPLIED = [C.SMFIC_CONNECT, C.SMFIC_HELO, C.SMFIC_MAIL, C.SMFIC_RCPT, C.SMFIC_DATA, C.SMFIC_UNKNOWN, C.SMFIC_HEADER, C.SMFIC_EOH, C.SMFIC_BODY];
const letters = (protocol: number): string =>
  REPLIED.filter((c) => expectsReply(protocol, c)).map((c) => String.fromCharCode(c)).join('');

describe('negotiate', () => {
  it('answers the Postfix/Sendmail v6 offer with NR bits, exact headers and macro lists', () => {
    const n = negotiate({ version: 6, actions: 0x1ff, protocol: 0x1fffff });
    expect(n.version).toBe(6);
    expect(n.actions).toBe(C.SMFIF_SETSYMLIST);
    expect(n.protocol).toBe(JOURNAL_PROTOCOL_WANTS);
    expect(n.protocol).toBe(
      C.SMFIP_NODATA | C.SMFIP_NOUNKNOWN | C.SMFIP_HDR_LEADSPC | C.SMFIP_NR_CONN | C.SMFIP_NR_HELO | C.SMFIP_NR_MAIL |
        C.SMFIP_NR_RCPT | C.SMFIP_NR_DATA | C.SMFIP_NR_UNKN | C.SMFIP_NR_HDR | C.SMFIP_NR_EOH | C.SMFIP_NR_BODY,
    );
    expect(n.protocol & C.SMFIP_NOHELO).toBe(0); // HELO is kept
    expect(n.headerLeadingSpace).toBe(true);
    expect(n.macroLists).toEqual([
      { stage: C.SMFIM_CONNECT, names: 'j {daemon_name} {daemon_addr} {daemon_port} {client_addr} {client_port} {client_name} _' },
      { stage: C.SMFIM_ENVFROM, names: 'i {auth_type} {auth_authen} {auth_author} {mail_addr}' },
      { stage: C.SMFIM_ENVRCPT, names: 'i {rcpt_addr}' },
      { stage: C.SMFIM_EOM, names: 'i' },
      { stage: C.SMFIM_EOH, names: 'i' },
    ]);
    expect(n.macroLists.every((m) => m.names.trim() !== '')).toBe(true);
    expect(letters(n.protocol)).toBe(''); // only OPTNEG and EOB get replies
  });

  it('answers Postfix milter_protocol=2 (2, 0x1FF, 0x7F): v2, no actions, no symlists, replies everywhere', () => {
    const n = negotiate({ version: 2, actions: 0x1ff, protocol: 0x7f });
    expect(n).toMatchObject({ version: 2, actions: 0, protocol: 0, macroLists: [], headerLeadingSpace: false });
    expect(letters(n.protocol)).toBe('CHMRTULNB');
  });

  it('answers a v4 offer: version 4, only the v4 bits it offers, no symlists', () => {
    const n = negotiate({ version: 4, actions: 0x3f, protocol: 0x3ff });
    expect(n.version).toBe(4);
    expect(n.actions).toBe(0);
    expect(n.protocol).toBe(C.SMFIP_NR_HDR | C.SMFIP_NOUNKNOWN | C.SMFIP_NODATA);
    expect(letters(n.protocol)).toBe('CHMRTUNB');
  });

  it('does not send macro lists below version 6 even if SETSYMLIST is offered', () => {
    expect(negotiate({ version: 4, actions: 0x1ff, protocol: 0x1fffff }).macroLists).toEqual([]);
  });

  it('never asks for more than offered: a v6 MTA offering only some NR bits', () => {
    const offer = C.SMFIP_NR_HDR | C.SMFIP_NR_BODY | C.SMFIP_NOHELO | C.SMFIP_SKIP | C.SMFIP_NODATA;
    const n = negotiate({ version: 6, actions: 0x0f, protocol: offer });
    expect(n.protocol & ~offer).toBe(0); // Sendmail: reply flags must be a subset of the offer
    expect(n.protocol).toBe(C.SMFIP_NR_HDR | C.SMFIP_NR_BODY | C.SMFIP_NODATA);
    expect(n.actions).toBe(0); // no SETSYMLIST offered
    expect(n.macroLists).toEqual([]);
    expect(letters(n.protocol)).toBe('CHMRTUN'); // we must answer these ourselves (not L, B)
  });

  it('offers above 6 are answered with 6', () => {
    expect(negotiate({ version: 7, actions: 0x1ff, protocol: 0x1fffff }).version).toBe(6);
  });

  it('treats zero masks as libmilter does (actions 0x0F, protocol 0x3F)', () => {
    const n = negotiate({ version: 6, actions: 0, protocol: 0 });
    expect(n.offer).toEqual({ version: 6, actions: 0x0f, protocol: 0x3f });
    expect(n.actions).toBe(0);
    expect(n.protocol).toBe(0); // nothing we want is in 0x3F (we keep HELO)
  });

  it('never echoes internal bits, even when offered', () => {
    const n = negotiate({ version: 6, actions: 0x1ff, protocol: 0xffffffff }, { protocol: 0xffffffff, macroLists: [] });
    expect(n.protocol & C.SMFI_INTERNAL).toBe(0);
    expect(n.protocol & C.SMFIP_HDR_LEADSPC).not.toBe(0);
  });

  it('rejects offers below version 2', () => {
    expect(() => negotiate({ version: 1, actions: 0x1ff, protocol: 0x3f })).toThrow(MilterProtocolError);
    expect(() => negotiate({ version: 0, actions: 0, protocol: 0 })).toThrow(/version 0; version 2 or later is required/);
  });

  it('expectsReply knows every NR bit and never replies to D, A, Q, K', () => {
    expect(letters(ALL_NO_REPLY_BITS)).toBe('');
    expect(letters(0)).toBe('CHMRTULNB');
    expect(expectsReply(ALL_NO_REPLY_BITS, C.SMFIC_BODYEOB)).toBe(true);
    for (const c of [C.SMFIC_MACRO, C.SMFIC_ABORT, C.SMFIC_QUIT, C.SMFIC_QUIT_NC]) expect(expectsReply(0, c)).toBe(false);
  });
});
