/**
 * A tiny authoritative DNS server on loopback UDP for the forwarder specs (our own code, no
 * library): answers MX (null MX included), A and AAAA from a zone table, NXDOMAIN for unknown
 * names, NODATA for known names without that type, SERVFAIL or silence (a timeout) on request.
 * Specs point the forwarder's `dnsServers` at it, so no query ever leaves the machine.
 */
import * as dgram from 'node:dgram';
import * as net from 'node:net';

export type Failure = 'NXDOMAIN' | 'SERVFAIL' | 'TIMEOUT';

export interface ZoneEntry {
  /** [preference, exchange]; exchange '.' is the null MX. */
  mx?: [number, string][] | Failure;
  a?: string[] | Failure;
  aaaa?: string[] | Failure;
}

/** Lower-case name (no trailing dot) → records, or a failure for every type of that name. */
export type Zone = Record<string, ZoneEntry | Failure>;

const TYPES: Record<number, 'a' | 'aaaa' | 'mx'> = { 1: 'a', 28: 'aaaa', 15: 'mx' };
const RCODE = { NOERROR: 0, SERVFAIL: 2, NXDOMAIN: 3, NOTIMP: 4 } as const;

function encodeName(name: string): Buffer {
  const labels = name.replace(/\.$/, '').split('.').filter((l) => l !== '');
  const parts: Buffer[] = [];
  for (const l of labels) {
    const b = Buffer.from(l, 'ascii');
    parts.push(Buffer.from([b.length]), b);
  }
  parts.push(Buffer.from([0]));
  return Buffer.concat(parts);
}

function ipv6Bytes(addr: string): Buffer {
  const [head, tail] = addr.includes('::') ? addr.split('::') as [string, string] : [addr, undefined];
  const h = head ? head.split(':') : [];
  const t = tail ? tail.split(':') : [];
  const groups = tail === undefined ? h : [...h, ...Array<string>(8 - h.length - t.length).fill('0'), ...t];
  const out = Buffer.alloc(16);
  groups.forEach((g, i) => out.writeUInt16BE(parseInt(g, 16), i * 2));
  return out;
}

interface Question {
  name: string;
  type: number;
  end: number;
}

function readQuestion(msg: Buffer): Question | undefined {
  if (msg.length < 12 || msg.readUInt16BE(4) < 1) return undefined;
  let off = 12;
  const labels: string[] = [];
  for (;;) {
    const len = msg[off];
    if (len === undefined) return undefined;
    off += 1;
    if (len === 0) break;
    labels.push(msg.subarray(off, off + len).toString('ascii'));
    off += len;
  }
  if (off + 4 > msg.length) return undefined;
  return { name: labels.join('.').toLowerCase(), type: msg.readUInt16BE(off), end: off + 4 };
}

export class TestDnsServer {
  readonly queries: { name: string; type: string }[] = [];
  zone: Zone;
  readonly #socket: dgram.Socket;
  #port = 0;
  #host = '127.0.0.1';

  private constructor(zone: Zone) {
    this.zone = zone;
    this.#socket = dgram.createSocket('udp4');
    this.#socket.on('message', (msg, rinfo) => this.#answer(msg, rinfo));
  }

  /**
   * On 127.0.0.1 and a free port, or at `at` (e.g. port 53 of a 127.x address that a resolv.conf can
   * name: as root); an address in use fails with a message saying so.
   */
  static async start(zone: Zone, at: { host: string; port: number } = { host: '127.0.0.1', port: 0 }): Promise<TestDnsServer> {
    const s = new TestDnsServer(zone);
    await new Promise<void>((resolve, reject) => {
      s.#socket.once('error', (err: NodeJS.ErrnoException) => {
        reject(new Error(`test DNS server: cannot bind ${at.host}:${at.port} (${err.code ?? err.message}): ${err.code === 'EADDRINUSE' ? 'something else uses it; pick another loopback address' : 'binding port 53 needs root'}`));
      });
      s.#socket.bind(at.port, at.host, resolve);
    });
    s.#host = at.host;
    s.#port = s.#socket.address().port;
    return s;
  }

  /** For the forwarder's dnsServers: 'HOST:PORT'. */
  get address(): string {
    return `${this.#host}:${this.#port}`;
  }

  get host(): string {
    return this.#host;
  }

  close(): Promise<void> {
    return new Promise((resolve) => this.#socket.close(() => resolve()));
  }

  #answer(msg: Buffer, rinfo: dgram.RemoteInfo): void {
    const q = readQuestion(msg);
    if (!q) return;
    const typeName = TYPES[q.type];
    this.queries.push({ name: q.name, type: typeName ?? String(q.type) });
    const entry = this.zone[q.name];
    let rcode: number = RCODE.NOERROR;
    let records: Buffer[] = [];
    if (entry === undefined || entry === 'NXDOMAIN') rcode = RCODE.NXDOMAIN;
    else if (entry === 'SERVFAIL') rcode = RCODE.SERVFAIL;
    else if (entry === 'TIMEOUT') return;
    else if (!typeName) rcode = RCODE.NOERROR;
    else {
      const value = entry[typeName];
      if (value === 'TIMEOUT') return;
      if (value === 'SERVFAIL') rcode = RCODE.SERVFAIL;
      else if (value === 'NXDOMAIN') rcode = RCODE.NXDOMAIN;
      else if (value !== undefined) records = this.#rdata(typeName, value);
    }
    const header = Buffer.alloc(12);
    header.writeUInt16BE(msg.readUInt16BE(0), 0);
    const rd = msg.readUInt16BE(2) & 0x0100;
    header.writeUInt16BE(0x8000 | 0x0400 | rd | 0x0080 | rcode, 2);
    header.writeUInt16BE(1, 4);
    header.writeUInt16BE(records.length, 6);
    const question = msg.subarray(12, q.end);
    const answers = records.map((rdata) => {
      const rr = Buffer.alloc(12);
      rr.writeUInt16BE(0xc00c, 0); // the name of the question
      rr.writeUInt16BE(q.type, 2);
      rr.writeUInt16BE(1, 4);
      rr.writeUInt32BE(60, 6);
      rr.writeUInt16BE(rdata.length, 10);
      return Buffer.concat([rr, rdata]);
    });
    this.#socket.send(Buffer.concat([header, question, ...answers]), rinfo.port, rinfo.address);
  }

  #rdata(type: 'a' | 'aaaa' | 'mx', value: string[] | [number, string][]): Buffer[] {
    if (type === 'mx') {
      return (value as [number, string][]).map(([pref, exchange]) => {
        const p = Buffer.alloc(2);
        p.writeUInt16BE(pref, 0);
        return Buffer.concat([p, exchange === '.' ? Buffer.from([0]) : encodeName(exchange)]);
      });
    }
    return (value as string[]).map((ip) => (type === 'a' && net.isIPv4(ip) ? Buffer.from(ip.split('.').map(Number)) : ipv6Bytes(ip)));
  }
}
