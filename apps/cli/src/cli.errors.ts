/** A mistake in what the user typed: printed as one line, exit code 2. */
export class UsageError extends Error {
  override name = 'UsageError';
}

/** The pipeline did not answer or refused: printed as one line, exit code 1. */
export class CliFailure extends Error {
  override name = 'CliFailure';
}

/** The service dead-lettered a command the CLI sent: printed as one line with the service's reason, exit code 1. */
export class CommandRejected extends CliFailure {
  override name = 'CommandRejected';

  constructor(
    message: string,
    readonly error: string,
    readonly deadLetterSeq: number | null,
  ) {
    super(message);
  }
}
