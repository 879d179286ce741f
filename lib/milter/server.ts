/**
 * The milter socket server: inet, inet6 or unix socket (stale socket removed, mode/group set after
 * bind), one MilterSession per connection, one write per read, messages handed on after their
 * end-of-body reply is written, graceful close. Nothing a peer sends
 * can throw out of here. Imports node:net/fs, util, message and milter modules only; must not
 * import policy, config, journal or forwarder.
 */
import * as fs from 'node:fs';
import * as net from 'node:net';
import type { MilterMessage } from './mta-facts';
import { systemClock, type Clock } from '../util/clock';
import { describeError } from '../util/errors';
import type { Logger } from '../util/logger';
import { MilterListenError } from './errors';
import { DEFAULT_MAX_PACKET_BYTES } from './frame-decoder';
import { formatListenAddress, parseListenAddress, type ListenAddress } from './listen-address';
import { findGroupId } from '../util/unix-group';
import type { NegotiationWants } from './negotiation';
import { MilterSession, type SessionCounters } from './session';

export interface MilterServerOptions {
  /** Parsed (milter.conf), or text in any form lib/util/net-address reads (`inet:IP:PORT`, `inet:PORT@IP`, …); port 0 ok. */
  listen: string | ListenAddress;
  /** unix only, e.g. 0o660 (applied after bind). */
  socketMode?: number;
  /** unix only: group name or numeric gid. */
  socketGroup?: string;
  logger: Logger;
  /** Default 1 MiB; a larger frame closes that connection with a log line. */
  maxPacketBytes?: number;
  /** Body bytes kept per message; beyond it chunks are dropped and msg.oversized = true. Default: no cap. */
  maxMessageBytes?: number;
  /**
   * Sync, at end-of-body, called right *after* the reply is written: the MTA never waits for what
   * we do with the message. Throws are caught and logged.
   */
  onMessage: (msg: MilterMessage) => void;
  /** Seconds from the read that completed an end-of-body to the write of its reply (the MTA's wait on us). */
  onEobReplied?: (seconds: number) => void;
  /** Timer source for the close grace period (tests). Default: the system clock. */
  clock?: Clock;
  /**
   * What to ask of the MTA in OPTNEG, asked anew for each connection (so a reload applies to the
   * next one). Default: the journaling wants.
   */
  wants?: NegotiationWants | (() => NegotiationWants);
  /** Where group names are looked up (tests). Default /etc/group. */
  groupFile?: string;
  /**
   * Serve this already listening socket (systemd socket activation) instead of binding `listen`:
   * no stale-socket removal, mode or group (the .socket unit sets those), and it is never unlinked.
   */
  inherited?: { fd: number; name?: string | undefined };
}

export interface MilterStats {
  connectionsTotal: number;
  activeSessions: number;
  messagesTotal: number;
  protocolErrors: number;
}

export interface MilterServer {
  /** Resolved, e.g. 'inet:127.0.0.1:43817' or 'unix:/path'. */
  readonly listenAddress: string;
  readonly port: number | undefined;
  stats(): MilterStats;
  /** Stop accepting; let sessions end; destroy leftovers after graceMs (default 5000). */
  close(graceMs?: number): Promise<void>;
}

/** Pause reading from a peer that does not read our replies once this much is queued. */
const WRITE_HIGH_WATER = 256 * 1024;

function checkInt(name: string, value: number | undefined, min: number, max: number): void {
  if (value === undefined) return;
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new MilterListenError(`${name}: expected an integer from ${min} to ${max}, got ${String(value)}`);
  }
}

/** gid for a group name or number, from /etc/group. */
export function resolveGroup(group: string, groupFile = '/etc/group'): number {
  if (/^\d+$/.test(group)) return Number(group);
  let text: string;
  try {
    text = fs.readFileSync(groupFile, 'latin1');
  } catch (err) {
    throw new MilterListenError(`socketGroup: cannot read ${groupFile} to look up "${group}": ${describeError(err)}`);
  }
  const gid = findGroupId(group, text);
  if (gid !== undefined) return gid;
  throw new MilterListenError(`socketGroup: expected a group name from ${groupFile} or a numeric gid, got "${group}"`);
}

function listen(server: net.Server, addr: ListenAddress): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (err: Error): void => reject(err);
    server.once('error', onError);
    const done = (): void => {
      server.off('error', onError);
      resolve();
    };
    if (addr.kind === 'unix') server.listen({ path: addr.path, exclusive: true }, done);
    else server.listen({ host: addr.host, port: addr.port, exclusive: true, ipv6Only: addr.kind === 'inet6' }, done);
  });
}

/** Serve a listening socket we inherited; Node tells TCP from unix sockets itself. */
function listenOnFd(server: net.Server, fd: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (err: Error): void => reject(err);
    server.once('error', onError);
    server.listen({ fd }, () => {
      server.off('error', onError);
      resolve();
    });
  });
}

/** Remove a socket file left by a dead process; refuse if something answers on it or it is no socket. */
async function removeStaleSocket(path: string): Promise<void> {
  let st: fs.Stats;
  try {
    st = fs.lstatSync(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw new MilterListenError(`listen: cannot check unix:${path}: ${describeError(err)}`);
  }
  if (!st.isSocket()) throw new MilterListenError(`listen: unix:${path} exists and is not a socket; not removing it`);
  const live = await new Promise<boolean>((resolve) => {
    const probe = net.connect({ path });
    probe.once('connect', () => { probe.destroy(); resolve(true); });
    probe.once('error', () => { probe.destroy(); resolve(false); });
  });
  if (live) throw new MilterListenError(`listen: another process is listening on unix:${path}`);
  fs.unlinkSync(path);
}

export async function startMilterServer(options: MilterServerOptions): Promise<MilterServer> {
  const inherited = options.inherited;
  const addr = typeof options.listen === 'string' ? parseListenAddress(options.listen) : options.listen;
  checkInt('maxPacketBytes', options.maxPacketBytes, 1, 0x7fffffff);
  checkInt('maxMessageBytes', options.maxMessageBytes, 0, Number.MAX_SAFE_INTEGER);
  checkInt('socketMode', options.socketMode, 0, 0o7777);
  const ownUnixSocket = addr.kind === 'unix' && inherited === undefined;
  const gid = ownUnixSocket && options.socketGroup !== undefined
    ? resolveGroup(options.socketGroup, options.groupFile) : undefined;
  if (ownUnixSocket) await removeStaleSocket(addr.path);

  const log = options.logger;
  const clock = options.clock ?? systemClock;
  const counters: SessionCounters = { messages: 0, protocolErrors: 0 };
  const sockets = new Set<net.Socket>();
  let connectionsTotal = 0;
  let closing: Promise<void> | undefined;
  let allClosed: (() => void) | undefined;

  const listenAddressText = formatListenAddress(addr);
  const server = net.createServer({ noDelay: true });
  server.on('connection', (socket) => {
    connectionsTotal++;
    const id = String(connectionsTotal);
    try {
      serve(socket, id);
    } catch (err) {
      log.error(`milter connection ${id}: cannot start session: ${describeError(err)}`);
      socket.destroy();
    }
  });

  function serve(socket: net.Socket, id: string): void {
    // Messages this read completed; handed on once their replies are written.
    const ended: MilterMessage[] = [];
    const session = new MilterSession({
      id,
      logger: log,
      onMessage: (msg) => ended.push(msg),
      maxPacketBytes: options.maxPacketBytes ?? DEFAULT_MAX_PACKET_BYTES,
      maxMessageBytes: options.maxMessageBytes,
      wants: typeof options.wants === 'function' ? options.wants() : options.wants,
      counters,
    });
    sockets.add(socket);
    let ending = false;
    socket.on('close', () => {
      sockets.delete(socket);
      try {
        session.end('connection closed');
      } catch { /* end() does not throw; the daemon must not die if it ever did */ }
      if (sockets.size === 0 && allClosed !== undefined) allClosed();
    });
    socket.on('error', (err) => {
      log.debug(`milter connection ${id}: socket error: ${describeError(err)}`);
    });
    socket.on('end', () => {
      session.end('EOF from the MTA');
    });
    if (socket.remoteAddress !== undefined) {
      socket.setNoDelay(true);
      socket.setKeepAlive(true, 60_000);
      log.debug(`milter connection ${id} from ${socket.remoteAddress ?? '?'}:${socket.remotePort ?? '?'}`);
    } else {
      log.debug(`milter connection ${id} on ${listenAddressText}`);
    }
    socket.on('data', (chunk: Buffer) => {
      if (ending) return;
      const started = process.hrtime.bigint();
      let out;
      try {
        out = session.receive(chunk);
      } catch (err) {
        ended.length = 0;
        log.error(`milter connection ${id}: internal error: ${describeError(err)}; closing this connection`);
        ending = true;
        socket.destroy();
        return;
      }
      // Stamped before the write: once the reply is in the kernel the MTA has it, and on a busy
      // machine the write itself may hand the CPU to the MTA before it returns to us.
      if (ended.length > 0) options.onEobReplied?.(Number(process.hrtime.bigint() - started) / 1e9);
      if (out.reply !== undefined) socket.write(out.reply);
      if (ended.length > 0) for (const msg of ended.splice(0)) handOn(id, msg);
      if (out.close) {
        ending = true;
        socket.end(() => socket.destroy());
      } else if (socket.writableLength > WRITE_HIGH_WATER) {
        socket.pause();
        socket.once('drain', () => socket.resume());
      }
    });
  }

  function handOn(id: string, msg: MilterMessage): void {
    try {
      options.onMessage(msg);
    } catch (err) {
      log.error(
        `milter connection ${id}: end-of-message handler failed for ${msg.queueId || 'a message without queue id'}: ${describeError(err)}; the message goes on`,
      );
    }
  }

  if (inherited !== undefined) {
    try {
      await listenOnFd(server, inherited.fd);
    } catch (err) {
      throw new MilterListenError(`listen: cannot serve the socket passed by systemd (fd ${inherited.fd}): ${describeError(err)}`, { cause: err });
    }
  } else {
    try {
      await listen(server, addr);
    } catch (err) {
      throw new MilterListenError(`listen: cannot listen on ${listenAddressText}: ${describeError(err)}`, { cause: err });
    }
  }
  let socketIno: number | undefined;
  if (ownUnixSocket && addr.kind === 'unix') {
    try {
      if (options.socketMode !== undefined) fs.chmodSync(addr.path, options.socketMode);
      if (gid !== undefined) fs.chownSync(addr.path, -1, gid);
      socketIno = fs.statSync(addr.path).ino;
    } catch (err) {
      server.close();
      try { fs.unlinkSync(addr.path); } catch { /* already gone */ }
      throw new MilterListenError(`listen: cannot set mode/group of unix:${addr.path}: ${describeError(err)}`, { cause: err });
    }
  }
  server.on('error', (err) => log.error(`milter server ${listenAddressText}: ${describeError(err)}`));

  let resolved: ListenAddress = addr;
  let port: number | undefined;
  const bound = server.address();
  if (bound !== null && typeof bound === 'object') {
    port = bound.port;
    resolved = { kind: bound.family === 'IPv6' ? 'inet6' : 'inet', host: bound.address, port: bound.port };
  } else if (typeof bound === 'string' && bound !== '') {
    resolved = { kind: 'unix', path: bound };
  }
  const listenAddress = inherited !== undefined && resolved === addr ? 'unix:(path set in the .socket unit)' : formatListenAddress(resolved);
  if (inherited !== undefined) {
    const named = inherited.name !== undefined ? ` "${inherited.name}"` : '';
    log.info(`milter listening on ${listenAddress} (socket${named} passed by systemd, fd ${inherited.fd}; listen = ${listenAddressText} in the configuration is not used)`);
  } else {
    log.info(`milter listening on ${listenAddress}`);
  }

  function unlinkOwnSocket(): void {
    if (!ownUnixSocket || addr.kind !== 'unix') return;
    try {
      const st = fs.lstatSync(addr.path);
      if (st.isSocket() && st.ino === socketIno) fs.unlinkSync(addr.path);
    } catch { /* gone already (libuv unlinks on close) */ }
  }

  async function shutdown(graceMs: number): Promise<void> {
    const serverClosed = new Promise<void>((resolve) => server.close(() => resolve()));
    unlinkOwnSocket();
    if (sockets.size > 0) {
      await new Promise<void>((resolve) => {
        const timer = clock.setTimer(graceMs, () => {
          if (sockets.size === 0) return;
          log.warn(`milter: ${sockets.size} session(s) still open ${graceMs} ms after shutdown began; closing them`);
          for (const s of sockets) s.destroy();
        });
        allClosed = () => {
          timer.cancel();
          resolve();
        };
        if (sockets.size === 0) allClosed();
      });
    }
    await serverClosed;
    log.info(`milter stopped listening on ${listenAddress}`);
  }

  return {
    listenAddress,
    port,
    stats: () => ({
      connectionsTotal,
      activeSessions: sockets.size,
      messagesTotal: counters.messages,
      protocolErrors: counters.protocolErrors,
    }),
    close(graceMs = 5000) {
      closing ??= shutdown(graceMs);
      return closing;
    },
  };
}
