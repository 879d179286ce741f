/**
 * Journal: builds the journal message for one intake address. Imports message and util only;
 * never policy, milter or forwarder.
 */
export {
  buildJournal, buildJournalParts, chooseBoundary, occursIn, rfc5322Date, describeOriginal, reportLines,
  JOURNAL_HEADER, RENAMED_PREFIX, UNKNOWN_MESSAGE_ID, UNSPECIFIED_ADDRESS, type JournalInput, type OriginalFacts, type BodyType,
} from './build';
export { decodeHeaderText, firstAddress } from './header-text';
export { singleLine } from './sanitize';
