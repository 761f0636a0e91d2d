/**
 * Typed errors for configuration and programmer mistakes. A failed *request* is never one of these:
 * it is an event with a cause. Codes are stable and part of the public contract.
 */
export type ShardlineErrorCode =
  | 'SL_ERR_CONFIG'
  | 'SL_ERR_USAGE'
  | 'SL_ERR_BAD_INPUT'
  | 'SL_ERR_IO'
  | 'SL_ERR_INPUT_CHANGED'
  | 'SL_ERR_VERIFY'
  | 'SL_ERR_REDIS';

export class ShardlineError extends Error {
  readonly code: ShardlineErrorCode;
  constructor(code: ShardlineErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = new.target.name;
  }
}

/** A bad option, environment variable or profile field. CLI exit code 2. */
export class ConfigError extends ShardlineError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('SL_ERR_CONFIG', message, options);
  }
}

/** Input that cannot be processed at all (not a single bad line: those go to rejects). CLI exit 1. */
export class BadInputError extends ShardlineError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('SL_ERR_BAD_INPUT', message, options);
  }
}

/** Filesystem or other I/O failure that stops the run. CLI exit 1. */
export class IoError extends ShardlineError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('SL_ERR_IO', message, options);
  }
}

/**
 * A file of the run directory could not be written (a full disk, a quota, no permission): the run
 * stops, and the same command run again resumes it. CLI exit 1.
 */
export class OutputWriteError extends IoError {}

/** The input file changed between a run and its resume. CLI exit 2. */
export class InputChangedError extends ShardlineError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('SL_ERR_INPUT_CHANGED', message, options);
  }
}

/** Redis unreachable, too old, or speaking another shardline protocol than this build. CLI exit 1. */
export class RedisError extends ShardlineError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('SL_ERR_REDIS', message, options);
  }
}
