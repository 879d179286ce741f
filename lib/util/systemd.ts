/**
 * systemd without a native addon: the listening socket systemd passed (LISTEN_FDS/LISTEN_PID/
 * LISTEN_FDNAMES, as sd_listen_fds(3)) and readiness through `systemd-notify` (NOTIFY_SOCKET is an
 * AF_UNIX datagram socket, which Node cannot open). Imports node:child_process only; nothing of the project.
 */
import { execFile } from 'node:child_process';

/** The first fd systemd passes (SD_LISTEN_FDS_START). */
export const LISTEN_FDS_START = 3;

export interface InheritedListener {
  fd: number;
  /** From LISTEN_FDNAMES (FileDescriptorName= in the .socket unit); undefined when not named. */
  name: string | undefined;
  /** How many fds systemd passed in all (we serve one). */
  passed: number;
}

export type ListenFdsResult =
  | { kind: 'none' }
  | { kind: 'inherited'; listener: InheritedListener }
  | { kind: 'ignored'; reason: string };

/**
 * The socket to serve, from the environment as systemd sets it. Pure. `preferName` picks the fd
 * of that name when systemd passes several; else the first (fd 3) is used.
 * LISTEN_PID must name this process: the variables may have leaked from a parent.
 */
export function listenFdsFromEnv(env: NodeJS.ProcessEnv, pid: number, preferName = 'milter'): ListenFdsResult {
  const fdsText = env['LISTEN_FDS'];
  if (fdsText === undefined || fdsText === '') return { kind: 'none' };
  const pidText = env['LISTEN_PID'];
  if (pidText === undefined || !/^\d+$/.test(pidText)) {
    return { kind: 'ignored', reason: `LISTEN_FDS=${fdsText} without a valid LISTEN_PID` };
  }
  if (Number(pidText) !== pid) {
    return { kind: 'ignored', reason: `LISTEN_PID=${pidText} names another process (this is ${pid})` };
  }
  if (!/^\d+$/.test(fdsText) || Number(fdsText) < 1) {
    return { kind: 'ignored', reason: `LISTEN_FDS=${fdsText} is not a positive number` };
  }
  const passed = Number(fdsText);
  const names = (env['LISTEN_FDNAMES'] ?? '').split(':');
  const index = Math.max(0, names.indexOf(preferName));
  const name = names[index] === undefined || names[index] === '' ? undefined : names[index];
  return { kind: 'inherited', listener: { fd: LISTEN_FDS_START + (index < passed ? index : 0), name, passed } };
}

/** sd_listen_fds(unset_environment=1): children we start (e.g. `logger`) must not see them. */
export function unsetListenEnv(env: NodeJS.ProcessEnv): void {
  for (const k of ['LISTEN_FDS', 'LISTEN_PID', 'LISTEN_FDNAMES']) delete env[k];
}

/**
 * Tell systemd our state (`READY=1`, `STOPPING=1`, `STATUS=…`) when it asked for it (NOTIFY_SOCKET),
 * through `systemd-notify`. The unit needs NotifyAccess=all, as the message comes from that child.
 * Resolves with an error text, or undefined when sent or not asked for.
 */
export function notifySystemd(
  assignments: string[],
  env: NodeJS.ProcessEnv = process.env,
  tool = '/usr/bin/systemd-notify',
): Promise<string | undefined> {
  if (!env['NOTIFY_SOCKET']) return Promise.resolve(undefined);
  return new Promise((resolve) => {
    // --pid: names us as the main process, so systemd attributes the message to the service
    // even if the short-lived systemd-notify has exited before it reads the datagram.
    execFile(tool, [`--pid=${process.pid}`, ...assignments], { env, timeout: 5000 }, (err) => {
      resolve(err ? `${tool} ${assignments.join(' ')}: ${err.message}` : undefined);
    });
  });
}
