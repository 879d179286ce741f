/**
 * The status page (`GET /` on the status endpoint) of the real daemon, loaded in headless Debian
 * Chromium: what it shows (tophosts rows, milter counts, last copies with their state and links to
 * /track/<id>) matches `/status` and `/track`; it loads nothing from anywhere else; a screenshot is
 * kept in spec/artifacts/status-page.png (git-ignored) for a human to look at.
 */
import * as fs from 'node:fs';
import type * as http from 'node:http';
import * as path from 'node:path';
import { ScriptedIntake } from '../support/scripted-intake';
import { DaemonProcess, feedIncoming, writeConfig } from '../support/daemon-process';
import { freePorts } from '../support/mta-sandbox';
import { httpGet } from '../support/http-get';
import { Chromium, type Page } from '../support/chromium';
import type { StatusJson, TrackJson } from '../../lib/status';
import { finalLinesOf, outcomeOf } from '../support/gateway-log';
import { until } from '../support/forwarder-harness';

const CA_FILE = path.join(__dirname, '..', 'fixtures', 'tls', 'ca.crt');
const ARTIFACT = path.join(__dirname, '..', 'artifacts', 'status-page.png');

async function getJson<T>(port: number, urlPath: string): Promise<{ status: number; doc: T; headers: http.IncomingHttpHeaders }> {
  const r = await httpGet(port, urlPath);
  const json = (r.headers['content-type'] ?? '').includes('json');
  return { status: r.status, headers: r.headers, doc: (json ? JSON.parse(r.body) : r.body) as T };
}

describe('the status page in headless Chromium', () => {
  let daemon: DaemonProcess;
  let intake: ScriptedIntake;
  let browser: Chromium;
  let page: Page;
  let statusPort: number;

  beforeAll(async () => {
    // The intake's third transaction is refused for good (hard bounce), so the page shows more than one state.
    intake = await ScriptedIntake.start({ replies: ['accept', 'accept', { stage: 'rcpt', code: 550, message: '5.1.1 no such intake' }] });
    const [milterPort, port] = await freePorts(2);
    statusPort = port!;
    daemon = await DaemonProcess.start(writeConfig(`[milter]
listen = inet:127.0.0.1:${milterPort}
status_listen = 127.0.0.1:${statusPort}
hostname = gw.example.test
drain_time = 1s

[tdc]
enabled = yes
intake_address = journal@intake.test
relay = [127.0.0.1]:${intake.port}
tls_ca_file = ${CA_FILE}
`));
    await feedIncoming(milterPort!, ['PAGE1', 'PAGE2', 'PAGE3', 'PAGE4', 'PAGE5']);
    await until(() => finalLinesOf(daemon.lines, 'PAGE5.1').map(outcomeOf).join() === 'delivered', 15_000, 'the delivered line of PAGE5.1');
    await new Promise((r) => setTimeout(r, 1200)); // one second past the first sample: the charts have a point
    browser = await Chromium.launch();
    page = await browser.open(`http://127.0.0.1:${statusPort}/`);
  }, 60_000);

  afterAll(async () => {
    await browser?.close();
    await daemon?.stop(10_000);
    await intake?.close();
  });

  it('is served as one self-contained HTML document', async () => {
    const r = await getJson<string>(statusPort, '/');
    expect(r.status).toBe(200);
    expect(r.headers['content-type']).toBe('text/html; charset=utf-8');
    expect(r.headers['content-security-policy']).toContain("default-src 'none'");
    expect(r.doc).not.toMatch(/(src|href)="(https?:)?\/\//);
    const resources = await page.evaluate<string[]>("performance.getEntriesByType('resource').map(e => e.name)");
    expect(resources).toEqual([]);
    expect(await page.evaluate<string>('document.title')).toBe('tdc-milter status');
  });

  it('shows the tophosts rows and milter counts that /status reports', async () => {
    const { doc: status } = await getJson<StatusJson>(statusPort, '/status');
    const rows = await page.evaluate<{ destination: string; cells: Record<string, string> }[]>(`
      [...document.querySelectorAll('#tophosts tbody tr')].map(tr => ({
        destination: tr.dataset.destination,
        cells: Object.fromEntries([...tr.querySelectorAll('td')].map(td => [td.dataset.field, td.textContent])),
      }))`);
    const expected = [status.queue, ...status.domains].map((d) => ({
      destination: d.destination,
      cells: Object.fromEntries(['activeRecipients', 'connectionsOut', 'delivered', 'softBounced', 'hardBounced', 'dropped', 'queuedBytes']
        .map((f) => [f, (d[f as keyof typeof d] as number).toLocaleString('en-US')])),
    }));
    // connections close about 1 s after the queue drains: compare what is stable
    for (const r of [...rows, ...expected]) delete r.cells['connectionsOut'];
    expect(rows).toEqual(expected);
    expect(rows.map((r) => r.destination)).toEqual(['the.tdc.queue', 'intake.test']);
    expect(rows[0]!.cells['delivered']).toBe('4');
    expect(rows[0]!.cells['hardBounced']).toBe('1');
    const facts = await page.evaluate<Record<string, string>>(
      "Object.fromEntries([...document.querySelectorAll('#facts b[data-field]')].map(b => [b.dataset.field, b.textContent]))");
    expect(facts['messagesTotal']).toBe(String(status.milter.messagesTotal));
    expect(facts['connectionsTotal']).toBe(String(status.milter.connectionsTotal));
    expect(await page.evaluate<string>("document.getElementById('readiness').textContent")).toBe('ready');
  });

  it('lists the last copies, newest first, with their state and links to /track/<id>', async () => {
    const copies = await page.evaluate<{ id: string; state: string; href: string }[]>(`
      [...document.querySelectorAll('#recent tbody tr')].map(tr => ({
        id: tr.dataset.copy, state: tr.querySelector('.pill').textContent, href: tr.querySelector('a').getAttribute('href'),
      }))`);
    expect(copies.map((c) => c.id)).toEqual(['PAGE5.1', 'PAGE4.1', 'PAGE3.1', 'PAGE2.1', 'PAGE1.1']);
    for (const c of copies) {
      expect(c.href).toBe(`/track/${c.id}`);
      const { status, doc } = await getJson<TrackJson>(statusPort, c.href);
      expect(status).toBe(200);
      expect([c.id, c.state]).toEqual([c.id, doc.records[0]!.state.replace('_', ' ')]);
    }
    // Copies go out over parallel connections: which one the intake refused is not fixed.
    expect(copies.map((c) => c.state).sort()).toEqual(['delivered', 'delivered', 'delivered', 'delivered', 'hard bounce']);
    // The link works from the page itself.
    const tracked = await page.evaluate<TrackJson>("fetch(document.querySelector('#recent a').href).then(r => r.json())");
    expect(tracked.records[0]!.copyId).toBe('PAGE5.1');
  });

  it('draws the rate charts as inline SVG and keeps a screenshot', async () => {
    const charts = await page.evaluate<{ id: string; points: number; latest: string }[]>(`
      [...document.querySelectorAll('figure.chart')].map(f => ({
        id: f.id, points: (f.querySelector('polyline')?.getAttribute('points') ?? '').split(' ').filter(Boolean).length,
        latest: f.querySelector('[data-latest]').textContent,
      }))`);
    expect(charts.map((c) => c.id)).toEqual(['chart-messages', 'chart-delivered', 'chart-failed', 'chart-queued']);
    for (const c of charts) expect([c.id, c.points >= 2]).toEqual([c.id, true]);
    expect(Number(charts[0]!.latest)).toBeGreaterThan(0); // messages per second over the last interval
    const png = await page.screenshot();
    expect(png.subarray(1, 4).toString()).toBe('PNG');
    fs.mkdirSync(path.dirname(ARTIFACT), { recursive: true });
    fs.writeFileSync(ARTIFACT, png);
  });
});
