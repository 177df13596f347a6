/** A mistake in what the user typed: printed as one line, exit code 2. */
export class UsageError extends Error {
  override name = 'UsageError';
}

/** The pipeline did not answer or refused: printed as one line, exit code 1. */
export class CliFailure extends Error {
  override name = 'CliFailure';
}
