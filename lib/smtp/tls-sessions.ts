/**
 * What TLS state outlives one connection: the SecureContext (one per CA setting: building one parses
 * every root CA, far too slow per connection) and the latest session of each host, so the next
 * connection to it resumes instead of doing a full handshake. Imports node:tls only.
 */
import * as tls from 'node:tls';

/** The latest TLS session per host:port, at most `max` hosts (oldest forgotten first). */
export class TlsSessionCache {
  readonly #sessions = new Map<string, Buffer>();
  constructor(readonly max = 256) {}

  get(key: string): Buffer | undefined {
    return this.#sessions.get(key);
  }

  set(key: string, session: Buffer): void {
    this.#sessions.delete(key);
    this.#sessions.set(key, session);
    if (this.#sessions.size > this.max) this.#sessions.delete(this.#sessions.keys().next().value!);
  }

  clear(): void {
    this.#sessions.clear();
  }

  get size(): number {
    return this.#sessions.size;
  }
}

/** TLS ≥ 1.2 trusting the system CAs plus `extraCa`; the same object for the same CA setting. */
export class SecureContexts {
  #cached: { key: string; context: tls.SecureContext } | undefined;

  get(extraCa: readonly Buffer[] | undefined): tls.SecureContext {
    const key = (extraCa ?? []).map((b) => b.toString('base64')).join(',');
    if (this.#cached?.key !== key) {
      const ca = extraCa && extraCa.length > 0 ? [...tls.rootCertificates, ...extraCa.map((b) => b.toString('utf8'))] : undefined;
      this.#cached = { key, context: tls.createSecureContext({ minVersion: 'TLSv1.2', ...(ca ? { ca } : {}) }) };
    }
    return this.#cached.context;
  }
}
