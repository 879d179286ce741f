/**
 * The status endpoint on a real loopback HTTP server (port 0): /metrics, /status, /track/<id>, 404s,
 * non-GET and foreign Host refused, non-loopback bind refused without allowRemote; and the CLI client
 * and commands against it and against a closed port.
 */
import * as http from 'node:http';
import * as net from 'node:net';
import {
  buildStatusJson,
  CopyTracker,
  fetchStatus,
  fetchTrack,
  startStatusServer,
  statusCommand,
  tophostsCommand,
  StatusClientError,
  StatusMetrics,
  trackCommand,
  type QueueCounters,
  type QueueSnapshot,
  type StatusServer,
} from '../../lib/status';
import { MemoryLogger } from '../../lib/util/logger';
import { copyFacts, lifeOf } from '../support/copy-events';
import { closedPort } from '../support/scripted-intake';

const T0 = Date.UTC(2026, 10, 23, 18, 20, 1);

function counters(over: Partial<QueueCounters> = {}): QueueCounters {
  return { activeRecipients: 0, connectionsOut: 0, delivered: 0, softBounced: 0, hardBounced: 0, dropped: 0, queuedBytes: 0, enqueued: 0, ...over };
}

interface Reply {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

function request(port: number, path: string, options: { method?: string; host?: string; headers?: Record<string, string> } = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host: options.host ?? '127.0.0.1', port, path, method: options.method ?? 'GET', agent: false, headers: options.headers },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }));
      },
    );
    req.on('error', reject);
    req.end();
  });
}

describe('status endpoint', () => {
  let server: StatusServer;
  let logger: MemoryLogger;
  let tracker: CopyTracker;
  let queue: QueueSnapshot;

  beforeEach(async () => {
    logger = new MemoryLogger();
    tracker = new CopyTracker({ capacity: 50 });
    queue = {
      total: counters({ delivered: 7, enqueued: 8, activeRecipients: 1, queuedBytes: 2048 }),
      byDomain: new Map([['intake.example.com', counters({ delivered: 7, enqueued: 8, activeRecipients: 1, queuedBytes: 2048 })]]),
    };
    const milter = { connectionsTotal: 9, activeSessions: 2, messagesTotal: 8, protocolErrors: 0 };
    const metrics = new StatusMetrics({ queue: () => queue, milter: () => milter });
    metrics.decision('DEFAULT', 'journaled');
    server = await startStatusServer({
      listen: '127.0.0.1:0',
      logger,
      metrics,
      tracker,
      status: () =>
        buildStatusJson({
          version: '0.1.0', startedAt: T0, now: T0 + 5000, milterListen: 'inet:127.0.0.1:8894', statusListen: server.address,
          journaling: true, intakeAddress: 'journal@intake.example.com', queue, milter, tracking: tracker,
        }),
    });
  });

  afterEach(async () => {
    await server.close();
  });

  it('listens on the port it reports and logs where', () => {
    expect(server.port).toBeGreaterThan(0);
    expect(server.address).toBe(`127.0.0.1:${server.port}`);
    expect(logger.matching(/status endpoint on http:\/\/127\.0\.0\.1:\d+\//)).toHaveLength(1);
  });

  it('GET /metrics answers Prometheus text with the current values', async () => {
    const r = await request(server.port, '/metrics');
    expect(r.status).toBe(200);
    expect(r.headers['content-type']).toBe('text/plain; version=0.0.4; charset=utf-8');
    expect(r.body).toContain('tdc_delivered_total{destination="the.tdc.queue"} 7\n');
    expect(r.body).toContain('tdc_queue_bytes{destination="intake.example.com"} 2048\n');
    expect(r.body).toContain('tdc_milter_sessions_active 2\n');
    expect(r.body).toContain('tdc_journal_decisions_total{policy="DEFAULT",outcome="journaled"} 1\n');
    queue = { total: counters({ delivered: 8 }), byDomain: new Map() };
    expect((await request(server.port, '/metrics?x=1')).body).toContain('tdc_delivered_total{destination="the.tdc.queue"} 8\n');
  });

  it('GET /status answers the status document; fetchStatus and the status command read it', async () => {
    const r = await request(server.port, '/status');
    expect(r.status).toBe(200);
    expect(r.headers['content-type']).toBe('application/json; charset=utf-8');
    expect(r.headers['cache-control']).toBe('no-store');
    const doc = JSON.parse(r.body) as Record<string, unknown>;
    expect(doc).toMatchObject({
      version: '0.1.0', uptimeSeconds: 5, journaling: true, statusListen: server.address,
      queue: { destination: 'the.tdc.queue', delivered: 7 },
      domains: [{ destination: 'intake.example.com', delivered: 7 }],
      milter: { activeSessions: 2 },
      tracking: { copies: 0, capacity: 50 },
    });

    expect(await fetchStatus(server.address)).toEqual(doc);
    const cmd = await statusCommand(server.address);
    expect(cmd.exitCode).toBe(0);
    expect(cmd.stderr).toBe('');
    expect(cmd.stdout).toMatch(/^the\.tdc\.queue +1 +0 +7 +0 +0 +0 +2048$/m);
    expect(cmd.stdout).toMatch(/^intake\.example\.com +1 +0 +7 /m);
    const json = await statusCommand(server.address, { json: true });
    expect(JSON.parse(json.stdout)).toEqual(doc);
    const top = await tophostsCommand(server.address);
    expect(top.exitCode).toBe(0);
    expect(top.stdout).toMatch(/^Status as of: +\w{3} \w{3} [ \d]\d \d\d:\d\d:\d\d \d{4} \S+$/m);
    expect(top.stdout).toMatch(/^1 +the\.tdc\.queue +1 +0 +7 +0 +0$/m);
    expect(top.stdout).toMatch(/^2 +intake\.example\.com +1 +0 +7 +0 +0$/m);
  });

  it('GET /track/<id> finds a copy id, a MID, a queue id and a Message-ID; 404 when unknown', async () => {
    const one = lifeOf(copyFacts('Q1.1', { mid: 77, messageId: '<m/1?x@example.org>', intakeAddress: 'journal@intake.example.com', bytes: 2048 }), T0);
    tracker.record(one.enqueued());
    tracker.record(one.start(5, 3));
    tracker.record(one.delivered(90, '250 2.0.0 Ok', 3));
    tracker.record(lifeOf(copyFacts('Q1.2', { mid: 78, messageId: '<m/1?x@example.org>' }), T0).enqueued());

    const byCopy = await request(server.port, '/track/Q1.1');
    expect(byCopy.status).toBe(200);
    expect(JSON.parse(byCopy.body)).toEqual({
      id: 'Q1.1',
      matchedBy: 'copy',
      records: [{
        copyId: 'Q1.1', mid: 77, queueId: 'Q1', messageId: '<m/1?x@example.org>', intakeAddress: 'journal@intake.example.com',
        state: 'delivered', final: true, omittedEvents: 0,
        summary: 'TDC: Message 77 was successfully delivered for scanning with Cisco Secure Email Threat Defense.',
        summaryAt: '2026-11-23T18:20:01.090Z',
        events: [
          { kind: 'enqueued', at: '2026-11-23T18:20:01.000Z', detail: 'MID 77 queued for journal@intake.example.com (2048 bytes)' },
          { kind: 'delivery_start', at: '2026-11-23T18:20:01.005Z', dcid: 3, detail: 'delivery start, attempt 1' },
          { kind: 'delivered', at: '2026-11-23T18:20:01.090Z', dcid: 3, detail: '250 2.0.0 Ok' },
        ],
      }],
    });

    // The MID the mail log names finds its copy, as the README's track row says.
    const byNumber = await fetchTrack(server.address, '78');
    expect(byNumber!.matchedBy).toBe('mid');
    expect(byNumber!.records.map((r) => r.copyId)).toEqual(['Q1.2']);

    const byQueue = await fetchTrack(server.address, 'Q1');
    expect(byQueue!.matchedBy).toBe('queue');
    expect(byQueue!.records.map((r) => r.copyId)).toEqual(['Q1.1', 'Q1.2']);
    // A Message-ID with '/' and '?' in it survives the URL (the client percent-encodes it).
    const byMid = await fetchTrack(server.address, '<m/1?x@example.org>');
    expect(byMid!.matchedBy).toBe('message-id');
    expect(byMid!.records).toHaveLength(2);

    const unknown = await request(server.port, '/track/NOPE');
    expect(unknown.status).toBe(404);
    // It names every key it looked up by, MID included (as `track` and the README do).
    expect(JSON.parse(unknown.body).error).toBe('no copy id, MID, queue id or Message-ID "NOPE" among the last 50 journal copies');
    expect(await fetchTrack(server.address, 'NOPE')).toBeNull();
    expect((await request(server.port, '/track/')).status).toBe(404);
    expect((await request(server.port, '/track/%E0%A4%A')).status).toBe(400);

    const cmd = await trackCommand(server.address, 'Q1.1');
    expect(cmd.exitCode).toBe(0);
    expect(cmd.stdout).toContain('  2026-11-23T18:20:01.090Z  delivered       DCID 3  250 2.0.0 Ok\n  final state: delivered\n');
    expect(cmd.stdout.split('\n')[0]).toBe('23 Nov 2026 18:20:01 (GMT +00:00) TDC: Message 77 was successfully delivered for scanning with Cisco Secure Email Threat Defense.');
    const miss = await trackCommand(server.address, 'NOPE');
    expect(miss).toEqual({ exitCode: 1, stdout: '', stderr: 'tdc-milter: "NOPE" is not a copy id, MID, queue id or Message-ID in the recent history\n' });
    expect((await trackCommand(server.address, ' ')).exitCode).toBe(2);
  });

  it.each(['/', '/metricsx', '/status/extra', '/favicon.ico', '/track'])('GET %s is 404', async (path) => {
    const r = await request(server.port, path);
    expect(r.status).toBe(404);
    expect(JSON.parse(r.body).error).toMatch(/no such path/);
  });

  it.each(['POST', 'PUT', 'DELETE', 'HEAD'])('%s is refused with 405', async (method) => {
    const r = await request(server.port, '/status', { method });
    expect(r.status).toBe(405);
    expect(r.headers['allow']).toBe('GET');
  });

  it('refuses a request naming a foreign Host (DNS rebinding), accepts localhost', async () => {
    const foreign = await request(server.port, '/status', { headers: { Host: 'evil.example:8895' } });
    expect(foreign.status).toBe(403);
    expect((await request(server.port, '/status', { headers: { Host: `localhost:${server.port}` } })).status).toBe(200);
    expect((await request(server.port, '/status', { headers: { Host: '[::1]:8895' } })).status).toBe(200);
  });

  it('answers 500 and logs when a source throws, and keeps serving', async () => {
    queue = undefined as unknown as QueueSnapshot; // the source now breaks (a bug elsewhere)
    const r = await request(server.port, '/metrics');
    expect(r.status).toBe(500);
    expect(logger.matching(/status endpoint: GET \/metrics: /)).toHaveLength(1);
    expect((await request(server.port, '/track/x')).status).toBe(404);
  });

  it('close() is idempotent and frees the port', async () => {
    const port = server.port;
    await Promise.all([server.close(), server.close()]);
    await expect(request(port, '/status')).rejects.toMatchObject({ code: 'ECONNREFUSED' });
  });
});

describe('status endpoint binding', () => {
  const deps = () => ({
    logger: new MemoryLogger(),
    metrics: new StatusMetrics({ queue: () => ({ total: counters(), byDomain: new Map() }), milter: () => ({ connectionsTotal: 0, activeSessions: 0, messagesTotal: 0, protocolErrors: 0 }) }),
    tracker: new CopyTracker(),
    status: () => { throw new Error('not used'); },
  });

  it.each(['0.0.0.0:0', '[::]:0', '192.0.2.1:8895'])('refuses the non-loopback %s without allowRemote', async (listen) => {
    await expect(startStatusServer({ listen, ...deps() })).rejects.toThrow(/not a loopback address; the status endpoint has no authentication/);
  });

  it('lets allowRemote past the loopback guard (checked without opening a port to the network)', async () => {
    // 192.0.2.1 (TEST-NET-1) is on no interface: the bind itself fails, after the guard let it through.
    await expect(startStatusServer({ listen: '192.0.2.1:0', allowRemote: true, ...deps() })).rejects.toThrow(
      'status endpoint: cannot listen on 192.0.2.1:0: EADDRNOTAVAIL',
    );
  });

  it('listens on [::1] when the machine has IPv6 loopback', async () => {
    let s: StatusServer;
    try {
      s = await startStatusServer({ listen: '[::1]:0', ...deps() });
    } catch (err) {
      // Only a machine without ::1 may refuse, and then with the reason.
      expect(String(err)).toMatch(/cannot listen on \[::1\]:0: (EADDRNOTAVAIL|EAFNOSUPPORT)/);
      return;
    }
    try {
      expect(s.address).toBe(`[::1]:${s.port}`);
      expect((await request(s.port, '/metrics', { host: '::1' })).status).toBe(200);
    } finally {
      await s.close();
    }
  });

  it('reports a port in use', async () => {
    const first = await startStatusServer({ listen: '127.0.0.1:0', ...deps() });
    try {
      await expect(startStatusServer({ listen: first.address, ...deps() })).rejects.toThrow(`status endpoint: cannot listen on ${first.address}: EADDRINUSE`);
    } finally {
      await first.close();
    }
  });

  it('refuses a bad address with the config-style message', async () => {
    await expect(startStatusServer({ listen: 'status.example:8895', ...deps() })).rejects.toThrow(/^status_listen: expected HOST:PORT/);
  });
});

describe('status client without a daemon', () => {
  it('fetchStatus against a closed port says tdc-milter is not running', async () => {
    const port = await closedPort();
    const err = await fetchStatus(`127.0.0.1:${port}`).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StatusClientError);
    expect((err as StatusClientError).code).toBe('not_running');
    expect((err as Error).message).toBe(`tdc-milter is not running (no status endpoint at 127.0.0.1:${port})`);
    expect(await statusCommand(`127.0.0.1:${port}`)).toEqual({
      exitCode: 1, stdout: '', stderr: `tdc-milter is not running (no status endpoint at 127.0.0.1:${port})\n`,
    });
    await expect(fetchTrack(`127.0.0.1:${port}`, 'x')).rejects.toThrow('tdc-milter is not running');
  });

  it('the commands say so when status_listen = no', async () => {
    expect(await statusCommand('no')).toEqual({ exitCode: 1, stdout: '', stderr: 'tdc-milter: the status endpoint is off (status_listen = no in the configuration)\n' });
    expect((await trackCommand('no', 'Q1')).exitCode).toBe(1);
  });

  it('says so when something else answers', async () => {
    const other = http.createServer((_req, res) => res.end('<html>hello</html>'));
    await new Promise<void>((resolve) => other.listen(0, '127.0.0.1', resolve));
    const port = (other.address() as net.AddressInfo).port;
    try {
      await expect(fetchStatus(`127.0.0.1:${port}`)).rejects.toMatchObject({ code: 'bad_reply' });
    } finally {
      other.closeAllConnections();
      await new Promise<void>((resolve) => other.close(() => resolve()));
    }
  });

  it('times out on an endpoint that never answers', async () => {
    const sockets: net.Socket[] = [];
    const mute = net.createServer((s) => sockets.push(s));
    await new Promise<void>((resolve) => mute.listen(0, '127.0.0.1', resolve));
    const port = (mute.address() as net.AddressInfo).port;
    try {
      await expect(fetchStatus(`127.0.0.1:${port}`, { timeoutMs: 100 })).rejects.toMatchObject({
        code: 'timeout',
        message: `the status endpoint at 127.0.0.1:${port} did not answer within 100 ms`,
      });
    } finally {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => mute.close(() => resolve()));
    }
  });
});
