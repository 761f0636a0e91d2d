import type { Cause } from '../events/event-types.js';

/** Thrown into an attempt by its own phase timers; carries the cause to record. */
export class PhaseTimeoutError extends Error {
  constructor(
    readonly phase: 'timeout_ttft' | 'timeout_idle' | 'timeout_total',
    limitMs: number,
  ) {
    super(`${phase.replace('timeout_', '')} timeout after ${limitMs} ms`);
    this.name = 'PhaseTimeoutError';
  }
}

/** Map an HTTP status to a cause (for non-2xx answers). */
export function causeOfStatus(status: number): Cause {
  if (status === 429) return 'http_429';
  if (status >= 500) return 'http_5xx';
  if (status >= 400) return 'http_4xx';
  return 'protocol_error';
}

/** Map a transport error (undici or Node) to a cause from the fixed vocabulary. */
export function causeOfError(err: unknown): Cause {
  if (err instanceof PhaseTimeoutError) return err.phase;
  const e = err as { code?: string; cause?: { code?: string }; message?: string } | null;
  const code = e?.code ?? e?.cause?.code ?? '';
  switch (code) {
    case 'UND_ERR_CONNECT_TIMEOUT':
    case 'ETIMEDOUT':
      return 'timeout_connect';
    case 'ECONNREFUSED':
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
    case 'EHOSTUNREACH':
    case 'ENETUNREACH':
      return 'conn_refused';
    case 'ECONNRESET':
    case 'EPIPE':
    case 'UND_ERR_SOCKET':
    case 'UND_ERR_CLOSED':
    case 'ECONNABORTED':
      return 'conn_reset';
    // A certificate the client does not trust: the connection cannot be made (the vocabulary has no
    // TLS cause; the message says which check failed).
    case 'DEPTH_ZERO_SELF_SIGNED_CERT':
    case 'SELF_SIGNED_CERT_IN_CHAIN':
    case 'UNABLE_TO_VERIFY_LEAF_SIGNATURE':
    case 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY':
    case 'CERT_HAS_EXPIRED':
    case 'ERR_TLS_CERT_ALTNAME_INVALID':
      return 'conn_refused';
    case 'UND_ERR_HEADERS_TIMEOUT':
      return 'timeout_ttft';
    case 'UND_ERR_BODY_TIMEOUT':
      return 'timeout_idle';
    default:
      return 'protocol_error';
  }
}
