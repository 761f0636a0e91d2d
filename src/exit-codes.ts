/** Process exit codes: a public contract that users' scripts depend on. */
export const EXIT = {
  OK: 0,
  /** The run could not go on (I/O error, unreadable input), or verification failed. */
  FAILURE: 1,
  /** Usage or configuration error. */
  USAGE: 2,
  /** The run finished but some requests failed. */
  REQUESTS_FAILED: 3,
  /** Interrupted by SIGINT/SIGTERM. */
  INTERRUPTED: 130,
} as const;
