/**
 * One plain HTTP GET to a loopback port for the endpoint specs: status, headers and body as text,
 * optionally from a given local address (127.0.0.2 plays a remote client). Test support only.
 */
import * as http from 'node:http';

export interface HttpReply {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

export function httpGet(port: number, urlPath: string, localAddress = '127.0.0.1'): Promise<HttpReply> {
  return new Promise((resolve, reject) => {
    http
      .get({ host: '127.0.0.1', port, path: urlPath, agent: false, localAddress }, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => (body += d));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
      })
      .on('error', reject);
  });
}
