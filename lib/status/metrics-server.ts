/**
 * The metrics listener (`metrics_listen`): `GET /metrics`, `/healthz` and `/readyz` only, on any
 * address, for a central Prometheus or a load balancer. It shows no Message-IDs, so unlike the status
 * endpoint it may bind a public address; clients outside `metrics_allow` (networks parsed at load
 * time, util/ip-network) get 403. Imports util and status siblings only.
 */
import type { Logger } from '../util/logger';
import { findNetwork, formatNetworks, parseIp, type Network } from '../util/ip-network';
import { parseStatusListen } from './listen';
import type { Readiness } from './health';
import { TEXT_TYPE, listenHttp, send, sendHealth, type HttpListener } from './http-util';

export interface MetricsServerOptions {
  /** `0.0.0.0:9895`, `[::]:9895`, `192.0.2.10:9895`; port 0 for any free port. */
  listen: string;
  /** Networks allowed to ask (`metrics_allow`, as the config loader parsed them); everyone else gets 403. */
  allow: readonly Network[];
  logger: Logger;
  metrics: { metricsText(): Promise<string>; readonly contentType: string };
  readiness: () => Readiness;
}

/** Whether a client address (as the socket reports it, IPv4-mapped or not) is in `allow`. */
export function clientAllowed(allow: readonly Network[], remote: string | undefined): boolean {
  const ip = remote === undefined ? undefined : parseIp(remote);
  return ip !== undefined && findNetwork(allow, ip) !== undefined;
}

export async function startMetricsServer(options: MetricsServerOptions): Promise<HttpListener> {
  const { logger } = options;
  const where = parseStatusListen(options.listen, 'metrics_listen');
  const listener = await listenHttp(where, { setting: 'metrics_listen', label: 'metrics listener' }, logger, async (req, res) => {
    const client = req.socket.remoteAddress;
    if (!clientAllowed(options.allow, client)) {
      send(res, 403, TEXT_TYPE, `forbidden: ${client ?? 'this client'} is not in metrics_allow\n`);
      return;
    }
    const path = (req.url ?? '/').split('?')[0]!;
    if (path !== '/metrics' && path !== '/healthz' && path !== '/readyz') {
      send(res, 404, TEXT_TYPE, `no such path ${path}; this listener serves /metrics, /healthz and /readyz\n`);
      return;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      send(res, 405, TEXT_TYPE, `method ${req.method ?? ''} not allowed; only GET and HEAD\n`, { Allow: 'GET, HEAD' });
      return;
    }
    if (path === '/metrics') send(res, 200, options.metrics.contentType, await options.metrics.metricsText());
    else sendHealth(res, path, options.readiness);
  });
  logger.info(`metrics listener on http://${listener.address}/ (/metrics, /healthz, /readyz) for ${formatNetworks(options.allow) || 'nobody (metrics_allow is empty)'}`);
  return listener;
}
