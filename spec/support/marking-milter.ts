/**
 * A scanner stand-in for specs: a milter that marks mail the way spam and virus milters do, adding
 * `NAME: VALUE` at end of body when a header matches `when`. It sits before tdc-milter in
 * `smtpd_milters`, to show what a milter later in the chain sees. Built on lib/milter's codecs.
 */
import * as net from 'node:net';
import * as C from '../../lib/milter/codes';
import { decodeCommand } from '../../lib/milter/command-decoder';
import { FrameDecoder } from '../../lib/milter/frame-decoder';
import { encodeAddHeader, encodeOptnegReply, REPLY_CONTINUE } from '../../lib/milter/reply-encoder';

export interface MarkingMilter {
  /** For smtpd_milters: `inet:127.0.0.1:PORT`. */
  address: string;
  /** Messages marked so far. */
  marked: number;
  close(): Promise<void>;
}

/** Only headers and end-of-body, and no reply to headers: what the marker needs, within what the MTA offers. */
const WANT_SKIPPED = C.SMFIP_NOCONNECT | C.SMFIP_NOHELO | C.SMFIP_NOMAIL | C.SMFIP_NORCPT | C.SMFIP_NOBODY | C.SMFIP_NOEOH |
  C.SMFIP_NOUNKNOWN | C.SMFIP_NODATA | C.SMFIP_NR_HDR;

export async function startMarkingMilter(mark: { name: string; value: string; when: (name: string, value: string) => boolean }): Promise<MarkingMilter> {
  const sockets = new Set<net.Socket>();
  const state: MarkingMilter = { address: '', marked: 0, close: async () => {} };
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => socket.destroy());
    const frames = new FrameDecoder();
    let protocol = 0;
    let hit = false;
    socket.on('data', (data: Buffer) => {
      for (const frame of frames.push(data)) {
        const cmd = decodeCommand(frame);
        switch (cmd.kind) {
          case 'optneg':
            protocol = cmd.protocol & WANT_SKIPPED;
            socket.write(encodeOptnegReply(Math.min(cmd.version, 6), C.SMFIF_ADDHDRS & cmd.actions, protocol));
            break;
          case 'macro':
          case 'abort':
            if (cmd.kind === 'abort') hit = false;
            break;
          case 'quit':
            socket.end();
            break;
          case 'header':
            if (mark.when(cmd.name, cmd.value.trim())) hit = true;
            if ((protocol & C.SMFIP_NR_HDR) === 0) socket.write(REPLY_CONTINUE);
            break;
          case 'eob':
            if (hit) {
              state.marked += 1;
              socket.write(encodeAddHeader(mark.name, mark.value));
            }
            hit = false;
            socket.write(REPLY_CONTINUE);
            break;
          default:
            socket.write(REPLY_CONTINUE);
        }
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  state.address = `inet:127.0.0.1:${(server.address() as net.AddressInfo).port}`;
  state.close = () => new Promise<void>((resolve) => {
    for (const s of sockets) s.destroy();
    server.close(() => resolve());
  });
  return state;
}
