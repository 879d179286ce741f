/**
 * The project's error base class: every error we raise on purpose carries a stable `code`
 * so callers branch on kinds, not on message text. Imports nothing of the project.
 */
export class TdcError extends Error {
  readonly code: string;
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
  }
}

/** The message of anything thrown, for a log line. */
export function describeError(err: unknown): string {
  if (err instanceof Error) return err.message;
  // An Error of another realm (node's own fs errors under Jest's vm) is no `instanceof Error`.
  const m = (err as { message?: unknown } | null | undefined)?.message;
  return typeof m === 'string' ? m : String(err);
}
