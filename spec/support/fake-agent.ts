/**
 * A fake DeliveryAgent for the queue's unit specs: records every call (copy, attempt, signal, time
 * on the ManualClock) and lets the spec settle each one with a typed result; records `demand`.
 */
import type { AgentHooks, DeliveryAgent, DeliveryContext, DeliveryResult, ForwarderOptions, QueuedCopy } from '../../lib/forwarder';
import type { Clock } from '../../lib/util/clock';

export interface AgentCall {
  copy: QueuedCopy;
  ctx: DeliveryContext;
  at: number;
  resolve(r: DeliveryResult): void;
}

export class FakeAgent implements DeliveryAgent<ForwarderOptions> {
  readonly calls: AgentCall[] = [];
  /** Every demand, in order: [intake, connections]. */
  readonly demands: [string, number][] = [];
  hooks: AgentHooks | undefined;
  connections = 0;
  readonly #clock: Clock;

  constructor(clock: Clock) {
    this.#clock = clock;
  }

  /** The connections the queue wants for `intake` now. */
  wanted(intake: string): number {
    return [...this.demands].reverse().find(([i]) => i === intake)?.[1] ?? 0;
  }

  deliver(copy: QueuedCopy, ctx: DeliveryContext): Promise<DeliveryResult> {
    return new Promise((resolve) => this.calls.push({ copy, ctx, at: this.#clock.now(), resolve }));
  }

  demand(intake: string, connections: number): void {
    this.demands.push([intake, connections]);
  }

  stats(): { connections: number; byDomain: Map<string, number> } {
    return { connections: this.connections, byDomain: new Map() };
  }

  reconfigure(): void {}

  close(): Promise<void> {
    return Promise.resolve();
  }
}

export const delivered = (dcid = 7, reply = '250 2.0.0 Ok: queued'): DeliveryResult =>
  ({ outcome: 'delivered', dsn: '2.0.0', reply, detail: 'delivered', dcid, phase: 'message' });
export const soft = (reply = '451 4.3.0 try later', dcid = 7): DeliveryResult =>
  ({ outcome: 'soft', dsn: '4.3.0', reply, detail: 'Temporary failure at intake', kind: 'smtp_4xx', dcid, phase: 'mail' });
export const refused = (): DeliveryResult =>
  ({ outcome: 'soft', dsn: '4.4.2', reply: '', detail: 'connection failed', kind: 'network', phase: 'connect' });
export const hard = (reply = '550 5.7.1 Not allowed', dcid = 7): DeliveryResult =>
  ({ outcome: 'hard', dsn: '5.7.1', reply, detail: 'Rejected by intake', kind: 'smtp_5xx', dcid, phase: 'rcpt' });
export const tlsError = (): DeliveryResult =>
  ({ outcome: 'hard', dsn: '5.7.10', reply: 'DEPTH_ZERO_SELF_SIGNED_CERT: self-signed certificate', detail: 'TLS Error', kind: 'tls', dcid: 9, phase: 'tls' });
export const nxdomain = (domain = 'esa.example.com'): DeliveryResult =>
  ({ outcome: 'hard', dsn: '5.1.2', reply: `DNS Hard Error looking up ${domain} (MX) : NXDomain`, detail: 'Bad destination host', kind: 'dns_hard', phase: 'route' });
