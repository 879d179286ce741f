import { MilterSession, type SessionOutput } from '../../../lib/milter/session';
import { FrameDecoder } from '../../../lib/milter/frame-decoder';
import { MemoryLogger } from '../../../lib/util/logger';
import { originalMessage } from '../../../lib/message';
import type { MilterMessage } from '../../../lib/milter';
import { pkt, postfixFirstMessage, postfixRest, traceBody, POSTFIX_FIRST_BODY, OFFER_BYTES } from '../../fixtures/milter/postfix-trace';
import { argvPacket, connectPacket, headerPacket, macroPacket, optnegPacket, packet } from '../../support/milter-client';

interface Fed {
  replies: string;
  raw: Buffer;
  close: boolean;
  outputs: SessionOutput[];
}

function setup(options: { maxMessageBytes?: number; onMessage?: (m: MilterMessage) => void } = {}) {
  const logger = new MemoryLogger();
  const messages: MilterMessage[] = [];
  const session = new MilterSession({
    id: 'c7',
    logger,
    onMessage: options.onMessage ?? ((m) => messages.push(m)),
    maxMessageBytes: options.maxMessageBytes,
  });
  const feed = (bytes: Buffer | Buffer[], cuts: number[] = []): Fed => {
    const stream = Buffer.isBuffer(bytes) ? bytes : Buffer.concat(bytes);
    const outputs: SessionOutput[] = [];
    let prev = 0;
    for (const c of [...cuts, stream.length]) {
      outputs.push(session.receive(stream.subarray(prev, c)));
      prev = c;
    }
    const raw = Buffer.concat(outputs.flatMap((o) => (o.reply ? [o.reply] : [])));
    const replies = new FrameDecoder().push(raw).map((f) => String.fromCharCode(f.code)).join('');
    return { replies, raw, close: outputs.some((o) => o.close), outputs };
  };
  return { session, logger, messages, feed };
}

const POSTFIX_STREAM = Buffer.concat([...postfixFirstMessage(undefined, true), ...postfixRest(true)].map((e) => e.bytes));

function checkPostfixMessages(messages: MilterMessage[]): void {
  expect(messages).toHaveLength(2);
  const [m1, m2] = messages as [MilterMessage, MilterMessage];
  expect(m1.queueId).toBe('7911520C346');
  expect(m1.client).toEqual({ hostname: 'localhost', family: 'inet', port: 0xbd22, address: '127.0.0.1' });
  expect(m1.helo).toBe('client.example');
  expect(m1.sender).toEqual({ address: 'alice@example.org', args: ['SIZE=120000', 'BODY=8BITMIME'] });
  expect(m1.recipients).toEqual([
    { address: 'bob@test.local', args: ['NOTIFY=NEVER'] },
    { address: 'carol@test.local', args: [] },
  ]);
  expect(m1.headers.map((h) => h.name)).toEqual(['Received', 'From', 'To', 'Subject', 'X-Folded', 'X-Empty', 'Message-ID', 'Date']);
  expect(m1.headers[2]).toEqual({ name: 'To', value: '  bob@test.local' });
  expect(m1.headers[4]).toEqual({ name: 'X-Folded', value: ' first part\n\tsecond part\n  third part' });
  expect(m1.headers[5]).toEqual({ name: 'X-Empty', value: '' });
  expect(m1.headerValuesExact).toBe(true);
  expect(Buffer.concat(m1.body).equals(POSTFIX_FIRST_BODY)).toBe(true);
  expect(m1.bodyBytes).toBe(POSTFIX_FIRST_BODY.length);
  expect(m1.oversized).toBe(false);
  expect(m1.macros.get('daemon_name')).toBe('mta.test.local');
  expect(m1.macros.get('j')).toBe('mta.test.local');
  expect(m1.macros.get('mail_addr')).toBe('alice@example.org');
  const head = originalMessage(m1).subarray(0, 200).toString('latin1');
  expect(head.startsWith('Received: from fake.example (fake [192.0.2.9]) by upstream; Mon, 1 Jan 2024 00:00:00 +0000\r\nFrom: Alice')).toBe(true);
  expect(originalMessage(m1).toString('latin1')).toContain('\r\nTo:  bob@test.local\r\nSubject:no-space\r\nX-Folded: first part\r\n\tsecond part\r\n  third part\r\nX-Empty:\r\n');

  expect(m2.queueId).toBe('7AF6F20C0B4');
  expect(m2.sender).toEqual({ address: 'a@example.org', args: [] });
  expect(m2.recipients).toEqual([{ address: 'erin@test.local', args: [] }]); // dave was RSET away
  expect(m2.client).toEqual(m1.client);
  expect(m2.macros.get('daemon_name')).toBe('mta.test.local'); // connect macros survive ABORT
  expect(m2.macros.get('rcpt_addr')).toBe('erin@test.local');
  expect(originalMessage(m2).toString('latin1')).toBe(
    'From: a@example.org\r\nSubject: second\r\nMessage-Id: <20261123183243.7AF6F20C0B4@mta.test.local>\r\n' +
      'Date: Mon, 23 Nov 2026 18:32:43 +0000 (UTC)\r\n\r\nshort body\r\n',
  );
}

describe('MilterSession: Postfix 3.7.11 session from the trace', () => {
  it('captures both messages, answers only OPTNEG and the two end-of-body commands, closes on QUIT', () => {
    const { feed, messages, session, logger } = setup();
    const out = feed(POSTFIX_STREAM);
    expect(out.replies).toBe('Occ');
    expect(out.close).toBe(true);
    expect(session.state).toBe('closed');
    checkPostfixMessages(messages);
    expect(logger.lines.filter((l) => l.level !== 'debug')).toEqual([]);
  });

  it('gives identical results for the stream split at every offset (small body)', () => {
    const stream = Buffer.concat([...postfixFirstMessage([traceBody(200)], true), ...postfixRest(true)].map((e) => e.bytes));
    const fingerprint = (ms: MilterMessage[]): string =>
      JSON.stringify(ms.map((m) => ({ ...m, macros: [...m.macros], body: Buffer.concat(m.body).toString('latin1') })));
    const ref = setup();
    const refOut = ref.feed(stream);
    const refPrint = fingerprint(ref.messages);
    expect(ref.messages).toHaveLength(2);
    for (let cut = 1; cut < stream.length; cut++) {
      const s = setup();
      const out = s.feed(stream, [cut]);
      if (!out.raw.equals(refOut.raw) || fingerprint(s.messages) !== refPrint) {
        expect({ cut, replies: out.replies, messages: fingerprint(s.messages) }).toEqual({ cut, replies: refOut.replies, messages: refPrint });
      }
    }
  });

  it('gives identical results fed one byte at a time (110 KB body)', () => {
    const { feed, messages } = setup();
    const out = feed(POSTFIX_STREAM, Array.from({ length: POSTFIX_STREAM.length - 1 }, (_, i) => i + 1));
    expect(out.replies).toBe('Occ');
    checkPostfixMessages(messages);
  });

  it('writes every reply one read produces as one buffer', () => {
    const { feed } = setup();
    const out = feed([
      OFFER_BYTES.postfix2,
      macroPacket('C', { j: 'mx' }),
      connectPacket('localhost', '4', 25, '127.0.0.1'),
      packet('H', Buffer.from('x\0')),
      argvPacket('M', ['<a@b>']),
      argvPacket('R', ['<c@d>']),
      argvPacket('R', ['<e@f>']),
    ]);
    expect(out.outputs).toHaveLength(1);
    expect(out.replies).toBe('Occccc');
  });
});

describe('MilterSession: protocol-2 MTA (no NR bits)', () => {
  it('answers every stage itself, in order', () => {
    const { feed, messages } = setup();
    const out = feed([
      OFFER_BYTES.postfix2,
      macroPacket('C', { j: 'mx' }), connectPacket('localhost', '4', 25, '127.0.0.1'),
      macroPacket('H', {}), packet('H', Buffer.from('client\0')),
      argvPacket('M', ['<a@b>']), argvPacket('R', ['<c@d>']),
      headerPacket('Subject', 'hi'), packet('N'), packet('B', Buffer.from('body\r\n')),
      macroPacket('E', { i: 'Q1' }), packet('E'), packet('A'), packet('Q'),
    ]);
    expect(out.replies).toBe('Occcccccc'); // C H M R L N B E: eight answers of our own
    expect(messages[0]!.headerValuesExact).toBe(false);
    expect(originalMessage(messages[0]!).toString('latin1')).toBe('Subject: hi\r\n\r\nbody\r\n');
    expect(messages[0]!.queueId).toBe('Q1');
  });
});

describe('MilterSession: Sendmail 8.17 shape', () => {
  it('keeps MAIL-stage i until end of body, no ABORT between messages, IPv6: prefix stripped', () => {
    const { feed, messages } = setup();
    const msg = (qid: string, from: string, rcpt: string): Buffer[] => [
      macroPacket('M', { i: qid, '{mail_mailer}': 'harness', '{mail_addr}': from }),
      argvPacket('M', [`<${from}>`]),
      macroPacket('R', { '{rcpt_mailer}': 'harness', '{rcpt_addr}': rcpt.split('@')[0]! }),
      argvPacket('R', [`<${rcpt}>`]),
      headerPacket('From', ' Sender <sender@client.test>'), headerPacket('Subject', ' multi'),
      packet('N'), packet('B', Buffer.from('Hello.\r\n')),
      macroPacket('E', { '{msg_id}': `<${qid}@client.test>` }), packet('E'),
    ];
    const out = feed([
      optnegPacket({ version: 6, actions: 0x1ff, protocol: 0x1fffff }),
      macroPacket('C', { j: 'mx.harness.test', _: 'localhost [IPv6:::1]', '{daemon_name}': 'MTA-harness', '{if_name}': 'localhost' }),
      connectPacket('localhost', '6', 40000, 'IPv6:::1'),
      macroPacket('H', {}), packet('H', Buffer.from('client.test\0')),
      ...msg('6ANJ2de3027287', 'first@client.test', 'bob@example.test'),
      ...msg('6ANJ2de4027287', 'second@client.test', 'dave@example.test'),
      packet('Q'),
    ]);
    expect(out.replies).toBe('Occ');
    expect(messages.map((m) => m.queueId)).toEqual(['6ANJ2de3027287', '6ANJ2de4027287']);
    expect(messages[1]!.client).toEqual({ hostname: 'localhost', family: 'inet6', port: 40000, address: '::1' });
    expect(messages[1]!.sender.address).toBe('second@client.test');
    expect(messages[1]!.recipients).toEqual([{ address: 'dave@example.test', args: [] }]);
    expect(messages[1]!.macros.get('msg_id')).toBe('<6ANJ2de4027287@client.test>');
    expect(messages[1]!.macros.get('if_name')).toBe('localhost');
    expect(messages[1]!.helo).toBe('client.test');
  });
});

function start(): Buffer[] {
  return [OFFER_BYTES.postfix6, macroPacket('C', { j: 'mx' }), connectPacket('h', '4', 1, '192.0.2.1')];
}

describe('MilterSession: macro scoping and per-message state', () => {
  it('drops RCPT and EOM macros of the previous message, keeps connect macros', () => {
    const { feed, messages } = setup();
    feed([
      ...start(),
      macroPacket('M', { '{auth_authen}': 'alice' }), argvPacket('M', ['<a@b>']),
      macroPacket('R', { '{rcpt_addr}': 'x@y' }), argvPacket('R', ['<x@y>']),
      macroPacket('E', { i: 'Q1' }), packet('E'),
      macroPacket('M', {}), argvPacket('M', ['<c@d>']), argvPacket('R', ['<z@y>']),
      packet('E'),
    ]);
    expect(messages.map((m) => [m.queueId, m.macros.get('auth_authen'), m.macros.get('rcpt_addr'), m.macros.get('j')])).toEqual([
      ['Q1', 'alice', 'x@y', 'mx'],
      ['', undefined, undefined, 'mx'],
    ]);
  });

  it('forgets MAIL-stage macros after end of body and after ABORT, even if the next MAIL has no macro packet', () => {
    const { feed, messages } = setup();
    feed([
      ...start(),
      macroPacket('M', { i: 'Q1' }), argvPacket('M', ['<a@b>']), argvPacket('R', ['<x@y>']), packet('E'),
      argvPacket('M', ['<c@d>']), argvPacket('R', ['<x@y>']), packet('E'),
      macroPacket('M', { i: 'Q3' }), argvPacket('M', ['<e@f>']), packet('A'),
      argvPacket('M', ['<g@h>']), argvPacket('R', ['<x@y>']), packet('E'),
    ]);
    expect(messages.map((m) => [m.sender.address, m.queueId])).toEqual([['a@b', 'Q1'], ['c@d', ''], ['g@h', '']]);
  });

  it('a repeated HELO (with or without ABORT) drops the transaction and MAIL macros', () => {
    const { feed, messages, logger } = setup();
    feed([
      ...start(),
      macroPacket('M', { i: 'OLD' }), argvPacket('M', ['<a@b>']), argvPacket('R', ['<x@y>']),
      packet('H', Buffer.from('again\0')), packet('A'),
      argvPacket('M', ['<c@d>']), argvPacket('R', ['<z@y>']), packet('E'),
    ]);
    expect(messages).toHaveLength(1);
    expect(messages[0]!.queueId).toBe('');
    expect(messages[0]!.helo).toBe('again');
    expect(messages[0]!.sender.address).toBe('c@d');
    expect(logger.matching(/SMFIC_HELO inside a transaction/)).toHaveLength(1);
  });

  it('MAIL inside a transaction starts over', () => {
    const { feed, messages } = setup();
    feed([...start(), argvPacket('M', ['<a@b>']), argvPacket('R', ['<x@y>']), headerPacket('A', 'b'),
      argvPacket('M', ['<c@d>']), argvPacket('R', ['<z@y>']), packet('E')]);
    expect(messages.map((m) => [m.sender.address, m.recipients.length, m.headers.length])).toEqual([['c@d', 1, 0]]);
  });

  it('QUIT_NC resets the connection; the next CONNECT starts afresh on the same socket', () => {
    const { feed, messages, session } = setup();
    const out = feed([
      ...start(), packet('H', Buffer.from('one\0')), packet('K'),
      macroPacket('C', { '{daemon_name}': 'other' }), connectPacket('h2', '4', 2, '192.0.2.2'),
      argvPacket('M', ['<a@b>']), argvPacket('R', ['<x@y>']), packet('E'),
    ]);
    expect(out.close).toBe(false);
    expect(session.state).toBe('idle');
    expect(messages[0]!.helo).toBeUndefined();
    expect(messages[0]!.client!.address).toBe('192.0.2.2');
    expect(messages[0]!.macros.get('j')).toBeUndefined();
    expect(messages[0]!.macros.get('daemon_name')).toBe('other');
  });

  it('ABORT outside a transaction is a no-op; EOF mid-transaction drops the message quietly', () => {
    const { feed, messages, session, logger } = setup();
    feed([...start(), packet('A'), packet('A'), argvPacket('M', ['<a@b>']), argvPacket('R', ['<x@y>'])]);
    session.end('EOF from the MTA');
    expect(messages).toEqual([]);
    expect(session.state).toBe('closed');
    expect(logger.matching(/c7: EOF from the MTA during a transaction \(MAIL FROM:<a@b>\); transaction dropped/)).toHaveLength(1);
    expect(session.receive(packet('E')).close).toBe(true);
  });

  it('end of body with trailing bytes keeps them as a last chunk', () => {
    const { feed, messages } = setup();
    feed([...start(), argvPacket('M', ['<a@b>']), argvPacket('R', ['<x@y>']), packet('N'), packet('B', Buffer.from('a')), packet('E', Buffer.from('b'))]);
    expect(Buffer.concat(messages[0]!.body).toString()).toBe('ab');
  });
});

describe('MilterSession: maxMessageBytes and the message handler', () => {
  it('keeps whole chunks up to the cap, then drops the rest and marks the message oversized', () => {
    const { feed, messages } = setup({ maxMessageBytes: 10 });
    feed([...start(), argvPacket('M', ['<a@b>']), argvPacket('R', ['<x@y>']), packet('N'),
      packet('B', Buffer.from('123456')), packet('B', Buffer.from('7890')), packet('B', Buffer.from('X')), packet('B', Buffer.from('')),
      packet('E'),
      argvPacket('M', ['<a@b>']), argvPacket('R', ['<x@y>']), packet('N'), packet('B', Buffer.from('1234567890')), packet('E')]);
    expect(messages.map((m) => [Buffer.concat(m.body).toString(), m.bodyBytes, m.oversized])).toEqual([
      ['1234567890', 11, true],
      ['1234567890', 10, false],
    ]);
  });

  it('drops every chunk after the first one over the cap, even small ones', () => {
    const { feed, messages } = setup({ maxMessageBytes: 5 });
    feed([...start(), argvPacket('M', ['<a@b>']), argvPacket('R', ['<x@y>']),
      packet('B', Buffer.from('1234')), packet('B', Buffer.from('5678')), packet('B', Buffer.from('9')), packet('E')]);
    expect([Buffer.concat(messages[0]!.body).toString(), messages[0]!.bodyBytes, messages[0]!.oversized]).toEqual(['1234', 9, true]);
  });

  it('a throwing handler is logged and the MTA still gets SMFIR_CONTINUE; the session goes on', () => {
    let calls = 0;
    const { feed, logger, session } = setup({
      onMessage: () => {
        calls++;
        throw new Error('boom');
      },
    });
    const out = feed([...start(), macroPacket('E', { i: 'Q9' }), argvPacket('M', ['<a@b>']), argvPacket('R', ['<x@y>']),
      macroPacket('E', { i: 'Q9' }), packet('E'), argvPacket('M', ['<a@b>']), argvPacket('R', ['<x@y>']), packet('E')]);
    expect(out.replies).toBe('Occ');
    expect(calls).toBe(2);
    expect(session.state).toBe('idle');
    expect(logger.matching(/^milter connection c7: end-of-message handler failed for Q9: boom; the message goes on$/)).toHaveLength(1);
  });
});

describe('MilterSession: protocol errors close only this session, with one log line', () => {
  const cases: Array<[string, Buffer[], RegExp]> = [
    ['body before MAIL', [...start(), packet('B', Buffer.from('x'))], /\(MILTER_SEQUENCE\) in state idle: SMFIC_BODY outside a transaction/],
    ['end of body before MAIL', [...start(), packet('E')], /SMFIC_BODYEOB outside a transaction/],
    ['a second OPTNEG', [...start(), OFFER_BYTES.postfix6], /in state idle: a second SMFIC_OPTNEG/],
    ['a second CONNECT', [...start(), connectPacket('h', '4', 1, '192.0.2.1')], /a second SMFIC_CONNECT/],
    ['a macro before OPTNEG', [macroPacket('C', {})], /in state awaiting_optneg: SMFIC_MACRO before SMFIC_OPTNEG/],
    ['an unknown command byte', [...start(), pkt('Z', 'x')], /\(MILTER_UNKNOWN_COMMAND\) in state idle: unknown command 0x5a/],
    ['RCPT after the headers', [...start(), argvPacket('M', ['<a@b>']), headerPacket('A', 'b'), argvPacket('R', ['<x@y>'])], /SMFIC_RCPT after the message headers started/],
    ['a header after EOH', [...start(), argvPacket('M', ['<a@b>']), packet('N'), headerPacket('A', 'b')], /in state body: SMFIC_HEADER after the end of the headers/],
    ['a zero length', [...start(), Buffer.from([0, 0, 0, 0])], /\(MILTER_FRAME_EMPTY\)/],
    ['a length of 2^31', [...start(), Buffer.from([0x80, 0, 0, 0, 0x42])], /\(MILTER_FRAME_TOO_LARGE\) in state idle: packet length 2147483648 for SMFIC_BODY exceeds the limit of 1048576 bytes/],
    ['a malformed header', [...start(), argvPacket('M', ['<a@b>']), pkt('L', 'X\0')], /\(MILTER_BAD_PAYLOAD\).*value not NUL-terminated/],
    ['an MTA version 1', [pkt('O', Buffer.from('000000010000000f0000003f', 'hex'))], /\(MILTER_NEGOTIATION\) in state awaiting_optneg: MTA offers milter protocol version 1/],
  ];
  it.each(cases)('%s', (_name, packets, pattern) => {
    const { feed, logger, session, messages } = setup();
    const out = feed(packets);
    expect(out.close).toBe(true);
    expect(out.outputs.at(-1)!.error).toBeDefined();
    expect(session.state).toBe('closed');
    const lines = logger.lines.filter((l) => l.level === 'warning');
    expect(lines).toHaveLength(1);
    expect(lines[0]!.message).toMatch(/^milter connection c7: protocol error /);
    expect(lines[0]!.message).toMatch(pattern);
    expect(lines[0]!.message).toMatch(/; closing this connection$/);
    expect(messages).toEqual([]);
    expect(session.receive(packet('Q'))).toMatchObject({ reply: undefined, close: true });
  });

  it('answers the good commands that came before the bad bytes in the same read', () => {
    const { feed, messages } = setup();
    const out = feed([...start(), argvPacket('M', ['<a@b>']), argvPacket('R', ['<x@y>']), packet('E'), Buffer.from([0, 0, 0, 0])]);
    expect(out.replies).toBe('Oc');
    expect(out.close).toBe(true);
    expect(messages).toHaveLength(1);
  });

  it('counts protocol errors and messages in the shared counters', () => {
    const counters = { messages: 0, protocolErrors: 0 };
    const s = new MilterSession({ id: 'x', logger: new MemoryLogger(), onMessage: () => {}, counters });
    s.receive(Buffer.concat([...start(), argvPacket('M', ['<a@b>']), packet('E'), packet('E')]));
    expect(counters).toEqual({ messages: 1, protocolErrors: 1 });
  });

  it('EOF inside a packet is logged once and counted', () => {
    const counters = { messages: 0, protocolErrors: 0 };
    const logger = new MemoryLogger();
    const s = new MilterSession({ id: 'x', logger, onMessage: () => {}, counters });
    s.receive(Buffer.concat([...start(), argvPacket('M', ['<a@b>']), packet('B', Buffer.alloc(100)).subarray(0, 50)]));
    s.end('EOF from the MTA');
    expect(logger.matching(/^milter connection x: EOF from the MTA inside a packet \(50 bytes of an incomplete packet\)/)).toHaveLength(1);
    expect(counters.protocolErrors).toBe(1);
  });

  it('a body frame split across reads where no body may come is refused at its first piece', () => {
    const logger = new MemoryLogger();
    const s = new MilterSession({ id: 'x', logger, onMessage: () => {} });
    const out = s.receive(Buffer.concat([...start(), packet('B', Buffer.alloc(100)).subarray(0, 50)]));
    expect(out.close).toBe(true);
    expect(logger.matching(/^milter connection x: protocol error \(MILTER_SEQUENCE\) in state idle: SMFIC_BODY outside a transaction/)).toHaveLength(1);
  });
});
