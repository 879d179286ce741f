/**
 * The one place that decides what an SMTP delivery attempt's end means (the gateway's retry table),
 * like Postfix's smtp_trouble.c: pure and table-tested, fed only with our own typed facts (SmtpFailure
 * from lib/smtp, DnsFailure from route.ts), never with a library's error shapes. 5xx hard except
 * 503/552; 4xx and 503/552 soft; TLS hard; network and DNS soft; NXDOMAIN/null MX hard; SIZE hard
 * 5.3.4; no 8BITMIME hard. Imports lib/smtp types and this folder only.
 */
import type { SmtpFailure, SmtpPhase } from '../smtp/client-session';
import { replyText, type SmtpReply } from '../smtp/reply-parser';
import type { DeliveryPhase, DeliveryResult, FailureKind } from './delivery-agent';
import type { DnsFailure } from './route';

function phaseOf(p: SmtpPhase): DeliveryPhase {
  return p === 'rset' || p === 'quit' ? 'message' : p;
}

function result(outcome: DeliveryResult['outcome'], kind: FailureKind, dsn: string, detail: string, phase: DeliveryPhase, reply = ''): DeliveryResult {
  return { outcome, kind, dsn, reply, detail, phase };
}

/** The enhanced status code of a reply, else the class digit with '.0.0' (RFC 3463). */
export function dsnOf(reply: SmtpReply): string {
  return reply.enhanced ?? `${String(reply.code).charAt(0)}.0.0`;
}

/** What the server said to a copy that went through. */
export function deliveredResult(reply: SmtpReply, dcid: number | undefined): DeliveryResult {
  const r: DeliveryResult = { outcome: 'delivered', dsn: dsnOf(reply), reply: replyText(reply), detail: 'delivered', phase: 'message' };
  if (dcid !== undefined) r.dcid = dcid;
  return r;
}

/** The retry-table row of an attempt that ended in `failure` (with the connection's DCID, if any). */
export function classifySmtp(failure: SmtpFailure, dcid?: number): DeliveryResult {
  const r = classifyFacts(failure);
  if (dcid !== undefined) r.dcid = dcid;
  return r;
}

function classifyFacts(f: SmtpFailure): DeliveryResult {
  const phase = phaseOf(f.phase);
  switch (f.kind) {
    case 'reply': {
      const { code } = f.reply;
      const text = replyText(f.reply);
      const dsn = dsnOf(f.reply);
      // A refused STARTTLS is a TLS failure (never a plaintext fallback); a 421 stays a 421.
      if (f.phase === 'starttls' && code !== 421) return result('hard', 'tls', '5.7.10', 'TLS Error', 'starttls', text);
      if (code === 503 || code === 552) return result('soft', 'smtp_special', dsn, 'Rejected by intake', phase, text);
      if (code >= 400 && code < 500) return result('soft', 'smtp_4xx', dsn, 'Temporary failure at intake', phase, text);
      if (code >= 500) return result('hard', 'smtp_5xx', dsn, 'Rejected by intake', phase, text);
      // A 2xx/3xx where another reply was due: the server does not speak SMTP as we do.
      return result('soft', 'network', '4.5.0', 'unexpected reply', phase, text);
    }
    case 'size':
      return result('hard', 'size', '5.3.4', `Message too big for the intake (${f.bytes} bytes, its SIZE is ${f.limit})`, 'mail');
    case 'no_8bitmime':
      return result('hard', 'no_8bitmime', '5.6.3', `the intake does not offer 8BITMIME; an ${f.body === 'binary' ? 'binary' : '8-bit'} copy is never sent as 7-bit`, 'mail');
    case 'tls':
      // The gateway's detail is just 'TLS Error'; what went wrong goes where a reply would be.
      return result('hard', 'tls', '5.7.10', 'TLS Error', 'tls', `${f.code !== undefined ? `${f.code}: ` : ''}${f.message}`);
    case 'network': {
      const early = f.phase === 'connect';
      return result('soft', 'network', early ? '4.4.1' : '4.4.2', early ? `No answer from host: ${f.message}` : `Bad connection: ${f.message}`, phase);
    }
    case 'timeout': {
      // The gateway's words; the reply says what never came.
      const early = f.phase === 'connect' || f.phase === 'greeting';
      const said = f.phase === 'greeting' ? 'Greeting never received' : f.phase === 'connect' ? 'Timeout' : f.message;
      return result('soft', 'network', early ? '4.4.1' : '4.4.2', 'connection timed out', phase, said);
    }
    case 'protocol':
      return result('soft', 'network', '4.5.0', `protocol error: ${f.error.message}`, phase);
    case 'aborted':
      return result('soft', 'aborted', '4.4.7', `attempt aborted: ${f.message}`, phase);
  }
}

/** The gateway's words for a failed lookup's DNS error code. */
const DNS_WORDS: Record<string, string> = {
  ENOTFOUND: 'NXDomain', NULLMX: 'Null MX', ESERVFAIL: 'ServFail', ETIMEOUT: 'Timeout', ENODATA: 'No address', EREFUSED: 'Refused',
};

/** 'NXDomain', 'ServFail', 'Timeout', 'Null MX', 'No address', 'Refused' (else the resolver's code). */
export function dnsWord(err: DnsFailure): string {
  return DNS_WORDS[err.dnsCode ?? ''] ?? err.dnsCode ?? 'Error';
}

/**
 * The retry-table row of a failed route lookup; `reply` in the gateway's words:
 * `DNS Hard Error looking up intake.example (MX) : NXDomain`.
 */
export function classifyDns(err: DnsFailure): DeliveryResult {
  const reply = err.lookup
    ? `DNS ${err.hard ? 'Hard' : 'Soft'} Error looking up ${err.lookup.name} (${err.lookup.rrtype}) : ${dnsWord(err)}`
    : err.message;
  return err.hard
    ? result('hard', 'dns_hard', '5.1.2', 'Bad destination host', 'route', reply)
    : result('soft', 'dns', '4.4.3', 'DNS failure', 'route', reply);
}

/** Our side: the copy cannot be sent at all (bad intake address, agent closed). */
export function localResult(detail: string): DeliveryResult {
  return result('hard', 'local', '5.3.0', detail, 'local');
}

export function abortedResult(detail: string, phase: DeliveryPhase = 'local'): DeliveryResult {
  return result('soft', 'aborted', '4.4.7', detail, phase);
}

/** Whether a connection that failed before it was ready should move on to the host's next address / next MX. */
export function triesNextHost(f: SmtpFailure): boolean {
  if (f.kind === 'network' || f.kind === 'timeout') return f.phase === 'connect' || f.phase === 'greeting';
  return f.kind === 'reply' && f.phase === 'greeting' && f.reply.code === 421;
}
