/**
 * The `status`, `tophosts` and `track` CLI commands as functions: ask the daemon, format, and say what to print
 * and which exit code to use, so main.ts only writes the result. Imports status siblings only.
 */
import { describeError } from '../util/errors';
import { fetchStatus, fetchTrack, StatusClientError, type FetchOptions } from './client';
import { formatStatusTable, formatTrack } from './format';
import { formatTophosts } from './tophosts';

export interface CommandResult {
  /** 0 ok; 1 the daemon is not reachable or the id is unknown; 2 bad usage. */
  exitCode: number;
  stdout: string;
  stderr: string;
}

export interface CommandOptions extends FetchOptions {
  /** Print the endpoint's JSON instead of the table. */
  json?: boolean;
}

function off(): CommandResult {
  return { exitCode: 1, stdout: '', stderr: 'tdc-milter: the status endpoint is off (status_listen = no in the configuration)\n' };
}

function failed(err: unknown): CommandResult {
  const text = err instanceof StatusClientError ? err.message : `tdc-milter: ${describeError(err)}`;
  return { exitCode: 1, stdout: '', stderr: `${text}\n` };
}

/** `tdc-milter status`: `listen` is the configured status_listen. */
export async function statusCommand(listen: string, options: CommandOptions = {}): Promise<CommandResult> {
  if (listen === 'no') return off();
  try {
    const status = await fetchStatus(listen, options);
    return { exitCode: 0, stdout: options.json === true ? `${JSON.stringify(status, null, 2)}\n` : formatStatusTable(status), stderr: '' };
  } catch (err) {
    return failed(err);
  }
}

/** `tdc-milter tophosts`: the gateway's layout of the same numbers. */
export async function tophostsCommand(listen: string, options: CommandOptions = {}): Promise<CommandResult> {
  if (listen === 'no') return off();
  try {
    const status = await fetchStatus(listen, options);
    return { exitCode: 0, stdout: options.json === true ? `${JSON.stringify([status.queue, ...status.domains], null, 2)}\n` : formatTophosts(status), stderr: '' };
  } catch (err) {
    return failed(err);
  }
}

/** `tdc-milter track <copy id|queue id|Message-ID>`. */
export async function trackCommand(listen: string, id: string | undefined, options: CommandOptions = {}): Promise<CommandResult> {
  if (id === undefined || id.trim() === '') {
    return { exitCode: 2, stdout: '', stderr: 'tdc-milter: track needs a copy id, MID, queue id or Message-ID\n' };
  }
  if (listen === 'no') return off();
  try {
    const found = await fetchTrack(listen, id.trim(), options);
    if (found === null) {
      return { exitCode: 1, stdout: '', stderr: `tdc-milter: ${JSON.stringify(id.trim())} is not a copy id, MID, queue id or Message-ID in the recent history\n` };
    }
    return { exitCode: 0, stdout: options.json === true ? `${JSON.stringify(found, null, 2)}\n` : formatTrack(found.records), stderr: '' };
  } catch (err) {
    return failed(err);
  }
}
