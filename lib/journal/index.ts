/**
 * Journal: builds the journal message for one intake address. Imports message and util only;
 * never policy, milter or forwarder.
 */
export { buildJournal, buildJournalParts, chooseBoundary, occursIn, clientIpText, rfc5322Date, JOURNAL_HEADER, type JournalInput } from './build';
export { singleLine } from './sanitize';
