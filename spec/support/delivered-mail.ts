/**
 * Reads what a harness MTA delivered to files (Postfix Maildir, Sendmail's deliver script) and splits
 * off what the MTA added on delivery: Return-Path / X-Original-To / Delivered-To on top and the MTA's
 * own first Received: header (which milters never see). Test support only: imports nothing from lib/.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

export interface Delivery {
  /** The file the message was delivered to. */
  file: string;
  /** The file's bytes as stored (LF line ends). */
  raw: Buffer;
  /** Envelope sender from Return-Path, without angle brackets ('' for the null sender). */
  sender: string;
  /** Envelope recipient of this copy (Delivered-To). */
  recipient: string;
  /** X-Original-To when the MTA wrote one. */
  originalRecipient: string | undefined;
  /** The MTA's queue id, from its own Received: header (`… with ESMTP id QUEUEID …`). */
  queueId: string;
  /** The MTA's own Received: header field as delivered (unfolded lines joined by LF). */
  received: string;
  /** The message as the MTA received it from the client: delivered bytes minus the headers the MTA
   *  added on top, with CRLF line ends (what a milter reassembles with originalMessage()). */
  message: Buffer;
}

const DELIVERY_HEADERS = new Set(['return-path', 'x-original-to', 'delivered-to']);

/** Splits the raw message into header fields (with their continuation lines) and the rest. */
function leadingFields(text: string): { fields: { name: string; text: string }[]; headerEnd: number } {
  const fields: { name: string; text: string }[] = [];
  let pos = 0;
  while (pos < text.length) {
    let end = text.indexOf('\n', pos);
    if (end < 0) end = text.length;
    const line = text.slice(pos, end);
    if (line === '' || line === '\r') break;
    if ((line[0] === ' ' || line[0] === '\t') && fields.length > 0) {
      const last = fields[fields.length - 1]!;
      last.text += text.slice(pos, Math.min(end + 1, text.length));
    } else {
      const colon = line.indexOf(':');
      fields.push({ name: colon < 0 ? line : line.slice(0, colon), text: text.slice(pos, Math.min(end + 1, text.length)) });
    }
    pos = end + 1;
  }
  return { fields, headerEnd: pos };
}

function fieldValue(fieldText: string): string {
  const colon = fieldText.indexOf(':');
  return fieldText.slice(colon + 1).replace(/\r?\n$/, '').trim();
}

function unbracket(s: string): string {
  const t = s.trim();
  return t.startsWith('<') && t.endsWith('>') ? t.slice(1, -1) : t;
}

/** LF → CRLF, leaving existing CRLF alone. */
export function toCrlf(buf: Buffer): Buffer {
  return Buffer.from(buf.toString('latin1').replace(/\r?\n/g, '\r\n'), 'latin1');
}

export function parseDelivery(file: string, raw: Buffer): Delivery {
  const text = raw.toString('latin1');
  const { fields } = leadingFields(text);
  let i = 0;
  let sender: string | undefined;
  let recipient: string | undefined;
  let originalRecipient: string | undefined;
  let offset = 0;
  for (; i < fields.length && DELIVERY_HEADERS.has(fields[i]!.name.toLowerCase()); i++) {
    const f = fields[i]!;
    const v = fieldValue(f.text);
    const name = f.name.toLowerCase();
    if (name === 'return-path') sender = unbracket(v);
    else if (name === 'delivered-to') recipient ??= v;
    else originalRecipient ??= v;
    offset += f.text.length;
  }
  const rec = fields[i];
  if (rec === undefined || rec.name.toLowerCase() !== 'received') {
    throw new Error(`${file}: expected the MTA's Received: header after the delivery headers, got ${JSON.stringify(rec?.name)}`);
  }
  const received = rec.text.replace(/\r?\n$/, '');
  const m = /\bwith\s+\S+\s+id\s+([0-9A-Za-z]+)/.exec(received);
  if (m === null) throw new Error(`${file}: no queue id in ${JSON.stringify(received)}`);
  offset += rec.text.length;
  if (sender === undefined || recipient === undefined) {
    throw new Error(`${file}: missing Return-Path or Delivered-To header`);
  }
  return {
    file,
    raw,
    sender,
    recipient,
    originalRecipient,
    queueId: m[1]!,
    received,
    message: toCrlf(raw.subarray(offset)),
  };
}

/**
 * Reads every complete delivery in the given directories (names starting with '.' are in-progress
 * temp files), oldest first. `cache` avoids re-parsing big files on every poll.
 */
export function readDeliveries(dirs: string[], cache: Map<string, Delivery>): Delivery[] {
  const found: { file: string; mtime: number }[] = [];
  for (const dir of dirs) {
    let names: string[];
    try {
      names = fs.readdirSync(dir);
    } catch {
      continue;
    }
    for (const name of names) {
      if (name.startsWith('.')) continue;
      const file = path.join(dir, name);
      try {
        const st = fs.statSync(file);
        if (st.isFile()) found.push({ file, mtime: st.mtimeMs });
      } catch {
        // moved meanwhile (Maildir new -> cur)
      }
    }
  }
  found.sort((a, b) => a.mtime - b.mtime || a.file.localeCompare(b.file));
  return found.map(({ file }) => {
    let d = cache.get(file);
    if (d === undefined) {
      d = parseDelivery(file, fs.readFileSync(file));
      cache.set(file, d);
    }
    return d;
  });
}
