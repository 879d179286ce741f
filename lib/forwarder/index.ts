/**
 * The forwarder's public face: the Forwarder, its shapes, the delivery contract and the event types
 * (see delivery-agent.ts and events.ts), plus the pure pieces the specs and the status module use.
 * Never imported by milter, policy or journal; imports only this folder.
 */
export { Forwarder, validateForwarderOptions, type ForwarderDeps, type AgentHooks } from './forwarder';
export {
  QUEUE_NAME, MAX_ATTEMPTS, journalBytes, domainOf,
  type JournalCopy, type CopyIdentity, type ForwarderOptions, type ForwarderCounters,
} from './types';
export type * from './delivery-agent';
export type * from './events';
export { connectionsWanted, BACKLOG_PER_CONNECTION, type ConcurrencyLimits } from './concurrency';
export { IdSequence, ID_EPOCH } from './id-sequence';
export { CounterBook, isCopyEvent } from './counter-book';
export { SmtpAgent, type SmtpAgentDeps } from './smtp-agent';
