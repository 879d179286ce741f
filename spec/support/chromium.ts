/**
 * Headless Debian Chromium driven over the DevTools protocol on a pipe (`--remote-debugging-pipe`:
 * NUL-terminated JSON on fds 3 and 4), so no WebSocket library and no downloaded browser are needed.
 * Open a page, evaluate expressions, take a PNG screenshot. Test support only: imports nothing from lib/.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { Readable, Writable } from 'node:stream';

export const CHROMIUM = process.env['CHROMIUM'] ?? '/usr/bin/chromium';

type Json = Record<string, unknown>;
interface Pending { resolve(v: Json): void; reject(e: Error): void }

export class Chromium {
  readonly #child: ChildProcess;
  readonly #in: Writable;
  readonly #dir: string;
  #nextId = 1;
  #buffer = '';
  readonly #pending = new Map<number, Pending>();
  readonly #waiters: { method: string; sessionId?: string; resolve(p: Json): void }[] = [];
  #stderr = '';

  private constructor() {
    if (!fs.existsSync(CHROMIUM)) {
      throw new Error(`${CHROMIUM} is missing: install Debian's chromium (apt-get install --no-install-recommends chromium) to run the status page spec`);
    }
    this.#dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tdc-chromium-'));
    this.#child = spawn(CHROMIUM, [
      '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync', '--disable-dev-shm-usage', '--hide-scrollbars',
      `--user-data-dir=${this.#dir}`, '--remote-debugging-pipe', 'about:blank',
    ], { stdio: ['ignore', 'ignore', 'pipe', 'pipe', 'pipe'] });
    this.#in = this.#child.stdio[3] as Writable;
    const out = this.#child.stdio[4] as Readable;
    this.#child.stderr!.on('data', (d: Buffer) => { this.#stderr = (this.#stderr + d.toString()).slice(-4000); });
    out.on('data', (d: Buffer) => this.#read(d.toString('utf8')));
    this.#child.on('exit', (code) => {
      for (const p of this.#pending.values()) p.reject(new Error(`chromium exited (${code}): ${this.#stderr}`));
      this.#pending.clear();
    });
  }

  static async launch(): Promise<Chromium> {
    const c = new Chromium();
    await c.send('Browser.getVersion');
    return c;
  }

  #read(text: string): void {
    this.#buffer += text;
    let nul: number;
    while ((nul = this.#buffer.indexOf('\0')) >= 0) {
      const msg = JSON.parse(this.#buffer.slice(0, nul)) as Json;
      this.#buffer = this.#buffer.slice(nul + 1);
      if (typeof msg['id'] === 'number') {
        const p = this.#pending.get(msg['id']);
        this.#pending.delete(msg['id']);
        const err = msg['error'] as { message?: string } | undefined;
        if (err) p?.reject(new Error(`DevTools: ${err.message ?? JSON.stringify(err)}`));
        else p?.resolve((msg['result'] ?? {}) as Json);
      } else if (typeof msg['method'] === 'string') {
        const i = this.#waiters.findIndex((w) => w.method === msg['method'] && (w.sessionId === undefined || w.sessionId === msg['sessionId']));
        if (i >= 0) this.#waiters.splice(i, 1)[0]!.resolve((msg['params'] ?? {}) as Json);
      }
    }
  }

  send(method: string, params: Json = {}, sessionId?: string): Promise<Json> {
    const id = this.#nextId++;
    return new Promise((resolve, reject) => {
      this.#pending.set(id, { resolve, reject });
      this.#in.write(`${JSON.stringify({ id, method, params, ...(sessionId ? { sessionId } : {}) })}\0`);
    });
  }

  #event(method: string, sessionId: string, timeoutMs: number): Promise<Json> {
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`no ${method} within ${timeoutMs} ms`)), timeoutMs);
      this.#waiters.push({ method, sessionId, resolve: (p) => { clearTimeout(t); resolve(p); } });
    });
  }

  /** A new tab of `width`×`height` showing `url`, loaded. */
  async open(url: string, width = 1280, height = 900): Promise<Page> {
    const { targetId } = await this.send('Target.createTarget', { url: 'about:blank' });
    const { sessionId } = await this.send('Target.attachToTarget', { targetId, flatten: true });
    const sid = sessionId as string;
    await this.send('Page.enable', {}, sid);
    await this.send('Emulation.setDeviceMetricsOverride', { width, height, deviceScaleFactor: 1, mobile: false }, sid);
    const loaded = this.#event('Page.loadEventFired', sid, 15_000);
    await this.send('Page.navigate', { url }, sid);
    await loaded;
    return new Page(this, sid);
  }

  async close(): Promise<void> {
    const exited = new Promise<void>((resolve) => (this.#child.exitCode !== null ? resolve() : this.#child.once('exit', () => resolve())));
    this.send('Browser.close').catch(() => undefined);
    const t = setTimeout(() => this.#child.kill('SIGKILL'), 5000);
    await exited;
    clearTimeout(t);
    fs.rmSync(this.#dir, { recursive: true, force: true });
  }
}

export class Page {
  constructor(readonly browser: Chromium, readonly sessionId: string) {}

  /** The value of a JavaScript expression in the page (JSON-serialisable). */
  async evaluate<T>(expression: string): Promise<T> {
    const r = await this.browser.send('Runtime.evaluate', { expression, returnByValue: true, awaitPromise: true }, this.sessionId);
    if (r['exceptionDetails']) throw new Error(`page threw: ${JSON.stringify(r['exceptionDetails'])}`);
    return (r['result'] as { value: T }).value;
  }

  /** A PNG of the whole page. */
  async screenshot(): Promise<Buffer> {
    const r = await this.browser.send('Page.captureScreenshot', { format: 'png', captureBeyondViewport: true }, this.sessionId);
    return Buffer.from(r['data'] as string, 'base64');
  }
}
