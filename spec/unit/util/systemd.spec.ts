/**
 * listenFdsFromEnv: which socket systemd passed, read from the environment as sd_listen_fds(3)
 * reads it (LISTEN_PID must be ours; LISTEN_FDNAMES picks the "milter" fd), and unsetListenEnv.
 */
import { listenFdsFromEnv, unsetListenEnv } from '../../../lib/util/systemd';

describe('listenFdsFromEnv', () => {
  it('no LISTEN_FDS: none', () => {
    expect(listenFdsFromEnv({}, 42)).toEqual({ kind: 'none' });
  });

  it('fd 3 when LISTEN_PID names this process', () => {
    expect(listenFdsFromEnv({ LISTEN_FDS: '1', LISTEN_PID: '42' }, 42)).toEqual({ kind: 'inherited', listener: { fd: 3, name: undefined, passed: 1 } });
  });

  it('the fd named "milter" among several', () => {
    const r = listenFdsFromEnv({ LISTEN_FDS: '2', LISTEN_PID: '42', LISTEN_FDNAMES: 'status:milter' }, 42);
    expect(r).toEqual({ kind: 'inherited', listener: { fd: 4, name: 'milter', passed: 2 } });
  });

  it('the first fd when none is named "milter"', () => {
    const r = listenFdsFromEnv({ LISTEN_FDS: '2', LISTEN_PID: '42', LISTEN_FDNAMES: 'a:b' }, 42);
    expect(r).toEqual({ kind: 'inherited', listener: { fd: 3, name: 'a', passed: 2 } });
  });

  it('ignored, with the reason, when meant for another process or malformed', () => {
    expect(listenFdsFromEnv({ LISTEN_FDS: '1', LISTEN_PID: '7' }, 42)).toEqual({ kind: 'ignored', reason: 'LISTEN_PID=7 names another process (this is 42)' });
    expect(listenFdsFromEnv({ LISTEN_FDS: '1' }, 42)).toEqual({ kind: 'ignored', reason: 'LISTEN_FDS=1 without a valid LISTEN_PID' });
    expect(listenFdsFromEnv({ LISTEN_FDS: 'x', LISTEN_PID: '42' }, 42)).toEqual({ kind: 'ignored', reason: 'LISTEN_FDS=x is not a positive number' });
    expect(listenFdsFromEnv({ LISTEN_FDS: '0', LISTEN_PID: '42' }, 42)).toEqual({ kind: 'ignored', reason: 'LISTEN_FDS=0 is not a positive number' });
  });

  it('unsetListenEnv removes the three variables and nothing else', () => {
    const env: NodeJS.ProcessEnv = { LISTEN_FDS: '1', LISTEN_PID: '42', LISTEN_FDNAMES: 'milter', PATH: '/bin' };
    unsetListenEnv(env);
    expect(env).toEqual({ PATH: '/bin' });
  });
});
