/**
 * The forwarder's public face: the Forwarder and its shapes (see the brief's contract), plus the
 * classifier and queue pieces the specs and the status module may want by name.
 * Never imported by milter, policy or journal; imports only this folder.
 */
export { Forwarder, validateForwarderOptions, type ForwarderDeps } from './forwarder';
export {
  QUEUE_NAME, MAX_ATTEMPTS, journalBytes,
  type JournalCopy, type CopyIdentity, type ForwarderOptions, type CopyEvent, type CopyEventKind, type ForwarderCounters,
  type DeliverFn, type DeliveryResult, type AttemptContext,
} from './types';
export { classifyFailure, type Classification, type FailureClass } from './classify';
export { SmtpAgent, type SmtpAgentDeps } from './smtp-agent';
