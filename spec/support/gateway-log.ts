/**
 * Reading the daemon's mail log in the gateway's words: the numeric MID of a copy id (from our line
 * `MID N copy QUEUEID.N of queue id …`) and a copy's one final line (delivered, hard bounced, or
 * dropped when never attempted). Works on whole log lines, with or without time stamps.
 */

const escape = (s: string): string => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

export type CopyOutcome = 'delivered' | 'hard' | 'dropped';

/** The MID the daemon gave `copyId`, or undefined when no line names it (yet). */
export function midOfCopy(lines: readonly string[], copyId: string): number | undefined {
  const re = new RegExp(`MID (\\d+) copy ${escape(copyId)} of queue id `);
  for (const l of lines) {
    const m = re.exec(l);
    if (m) return Number(m[1]);
  }
  return undefined;
}

/** The final line pattern of a MID: exactly one of these is written per copy. */
export function finalLinePattern(mid: number): RegExp {
  return new RegExp(`TDC: MID ${mid} (successfully delivered for scanning|delivery failed to Cisco Secure Email Threat Defense|copy \\S+ of queue id \\S+ dropped from the\\.tdc\\.queue)`);
}

/** The final lines of a copy, by copy id ([] when it has none yet). */
export function finalLinesOf(lines: readonly string[], copyId: string): string[] {
  const mid = midOfCopy(lines, copyId);
  if (mid === undefined) return [];
  const re = finalLinePattern(mid);
  return lines.filter((l) => re.test(l));
}

export function outcomeOf(line: string): CopyOutcome {
  if (line.includes('successfully delivered for scanning')) return 'delivered';
  if (line.includes('dropped from the.tdc.queue')) return 'dropped';
  return 'hard';
}
