/**
 * Policy: which messages are incoming, and which recipients are journaled to which intake address.
 * Imports config, message and util only; never milter, journal or forwarder.
 */
export { classifyDirection } from './direction';
export { planJournal, matchPolicy, JOURNAL_MARKER_HEADER, type JournalCopyPlan, type JournalPlan, type SkippedRecipients } from './plan';
export { matchesAny, matchesPattern, splitAddress, type SplitAddress } from './address';
export { clientIp } from './network';
