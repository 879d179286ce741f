/**
 * The benchmark's message intake, run as its own process (so its CPU is measured apart): an
 * smtp-server with STARTTLS (test CA certificate from spec/fixtures/tls) that accepts every message
 * and counts copies. Modes: `sink` (answers at once) and `stall` (greets, takes the data, never
 * answers the end of DATA). Talks to the parent over IPC. Imports nothing from lib/.
 */
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { SMTPServer } from 'smtp-server';

export type IntakeRequest = { op: 'count' } | { op: 'close' };
export interface IntakeReport {
  op: 'ready' | 'count';
  port: number;
  received: number;
  bytes: number;
  connections: number;
}

const TLS_DIR = path.join(__dirname, '..', '..', 'spec', 'fixtures', 'tls');

/**
 * smtp-server waits a fixed 100 ms before every greeting (to catch early talkers). A production
 * intake does not; the bench removes the wait so connection set-up is not billed at 100 ms to
 * whichever client opens more connections. The same intake serves scenarios (d) and (e).
 */
function removeGreetingDelay(): void {
  // The connection class is internal to smtp-server; reached by path (bench only).
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const mod = require(path.join(path.dirname(require.resolve('smtp-server')), 'smtp-connection.js')) as {
    SMTPConnection: { prototype: Record<string, unknown> };
  };
  const proto = mod.SMTPConnection.prototype as {
    init(): void;
    _setListeners(cb: () => void): void;
    connectionReady(): void;
    send(code: number, text: string, last?: boolean): void;
    _server: { options: { maxClients?: number }; connections: Set<unknown> };
    name: string;
  };
  proto.init = function init(this: typeof proto): void {
    this._setListeners(() => {
      const max = this._server.options.maxClients;
      if (max && this._server.connections.size > max) {
        this.send(421, `${this.name} Too many connected clients, try again in a moment`, false);
        return;
      }
      this.connectionReady();
    });
  };
}

function main(): void {
  const mode = process.argv[2] === 'stall' ? 'stall' : 'sink';
  if (process.argv.includes('--keep-greeting-delay') === false) removeGreetingDelay();
  let received = 0;
  let bytes = 0;
  let connections = 0;
  const server = new SMTPServer({
    key: fs.readFileSync(path.join(TLS_DIR, 'intake.key')),
    cert: fs.readFileSync(path.join(TLS_DIR, 'intake.crt')),
    minVersion: 'TLSv1.2',
    disableReverseLookup: true,
    authOptional: true,
    disabledCommands: ['AUTH'],
    logger: false,
    size: 100 * 1024 * 1024,
    maxClients: 1000,
    socketTimeout: 10 * 60_000,
    onConnect: (_s, cb) => {
      connections += 1;
      cb();
    },
    onData: (stream, _session, cb) => {
      let n = 0;
      stream.on('data', (c: Buffer) => (n += c.length));
      stream.on('end', () => {
        if (mode === 'stall') return; // never answer: the client waits for its command timeout
        received += 1;
        bytes += n;
        cb(null, '2.0.0 Ok: queued');
      });
    },
  });
  server.on('error', () => { /* client-side resets and TLS aborts are normal under load */ });
  const report = (op: IntakeReport['op']): IntakeReport => ({
    op,
    port: ((server as unknown as { server: net.Server }).server.address() as net.AddressInfo).port,
    received,
    bytes,
    connections,
  });
  server.listen(0, '127.0.0.1', () => process.send?.(report('ready')));
  process.on('message', (m: IntakeRequest) => {
    if (m.op === 'count') process.send?.(report('count'));
    else if (m.op === 'close') process.exit(0);
  });
  process.on('disconnect', () => process.exit(0));
}

if (require.main === module) main();
