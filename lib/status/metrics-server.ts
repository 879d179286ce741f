/**
 * The metrics listener (`metrics_listen`): `GET /metrics`, `/healthz` and `/readyz` only, on any
 * address, for a central Prometheus or a load balancer. It shows no Message-IDs, so unlike the status
 * endpoint it may bind a public address; clients outside `metrics_allow` get 403.
 * Imports util and status siblings only.
 */
import * as net from 'node:net';
import type { Logger } from '../util/logger';
import { TdcError } from '../util/errors';
import { parseStatusListen } from './listen';
import type { Readiness } from './health';
import { TEXT_TYPE, listenHttp, send, sendHealth, type HttpListener } from './http-util';

export interface MetricsServerOptions {
  /** `0.0.0.0:9895`, `[::]:9895`, `192.0.2.10:9895`; port 0 for any free port. */
  listen: string;
  /** Networks allowed to ask (CIDR text, `metrics_allow`); everyone else gets 403. */
  allow: readonly string[];
  logger: Logger;
  metrics: { metricsText(): Promise<string>; readonly contentType: string };
  readiness: () => Readiness;
}

/** A BlockList of `allow`; throws TdcError('metrics_allow') on an entry that is not a network. */
export function allowList(allow: readonly string[]): net.BlockList {
  const list = new net.BlockList();
  for (const text of allow) {
    const [addr, prefix] = text.split('/');
    const family = net.isIPv4(addr ?? '') ? 'ipv4' : net.isIPv6(addr ?? '') ? 'ipv6' : undefined;
    if (family === undefined) throw new TdcError('metrics_allow', `metrics_allow: expected networks such as 192.0.2.0/24, got ${JSON.stringify(text)}`);
    if (prefix === undefined) list.addAddress(addr!, family);
    else list.addSubnet(addr!, Number(prefix), family);
  }
  return list;
}

/** Whether a client address (as the socket reports it, IPv4-mapped or not) is in `list`. */
export function clientAllowed(list: net.BlockList, remote: string | undefined): boolean {
  if (remote === undefined) return false;
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(remote);
  if (mapped) return list.check(mapped[1]!, 'ipv4') || list.check(remote, 'ipv6');
  return net.isIPv4(remote) ? list.check(remote, 'ipv4') : list.check(remote, 'ipv6');
}

export async function startMetricsServer(options: MetricsServerOptions): Promise<HttpListener> {
  const { logger } = options;
  const where = parseStatusListen(options.listen);
  const allowed = allowList(options.allow);
  const listener = await listenHttp(where, { setting: 'metrics_listen', label: 'metrics listener' }, logger, async (req, res) => {
    const client = req.socket.remoteAddress;
    if (!clientAllowed(allowed, client)) {
      send(res, 403, TEXT_TYPE, `forbidden: ${client ?? 'this client'} is not in metrics_allow\n`);
      return;
    }
    const path = (req.url ?? '/').split('?')[0]!;
    if (path !== '/metrics' && path !== '/healthz' && path !== '/readyz') {
      send(res, 404, TEXT_TYPE, `no such path ${path}; this listener serves /metrics, /healthz and /readyz\n`);
      return;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      send(res, 405, TEXT_TYPE, `method ${req.method ?? ''} not allowed; only GET\n`, { Allow: 'GET' });
      return;
    }
    if (path === '/metrics') send(res, 200, options.metrics.contentType, await options.metrics.metricsText());
    else sendHealth(res, path, options.readiness);
  });
  logger.info(`metrics listener on http://${listener.address}/ (/metrics, /healthz, /readyz) for ${options.allow.join(', ') || 'nobody (metrics_allow is empty)'}`);
  return listener;
}
