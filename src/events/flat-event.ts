import type { IdInterner } from './id-interner.js';

/** Event types in the order of their numeric codes (code = index + 1; 0 = a type this version does not know). */
export const EVENT_TYPE_CODES = [
  'run_start',
  'shard_start',
  'enqueue',
  'attempt_start',
  'conn_open',
  'response_headers',
  'first_token',
  'attempt_end',
  'backoff',
  'postprocess_start',
  'postprocess_end',
  'request_end',
  'gauge',
  'shard_end',
  'shard_exit',
  'run_end',
] as const;

/** Numeric type codes, e.g. `T.attempt_end`. */
export const T = Object.fromEntries(EVENT_TYPE_CODES.map((name, i) => [name, i + 1])) as {
  readonly [K in (typeof EVENT_TYPE_CODES)[number]]: number;
};

/** `outcome` values as codes (0 = absent or unknown). */
export const OUTCOME_CODES = ['ok', 'error', 'succeeded', 'failed'] as const;
export const O = { ok: 1, error: 2, succeeded: 3, failed: 4 } as const;

/**
 * One event as the report reads it: the fields it uses, flattened into a reusable struct so reading
 * a large log allocates nothing per line. Absent numbers are NaN, absent strings ''. The request id
 * is interned (`rid`, -1 when the event has none). See docs/events.md for what each field means.
 */
export class FlatEvent {
  ts = NaN;
  shard = NaN;
  type = 0;
  rid = -1;
  attempt = NaN;
  attempts = NaN;
  status = NaN;
  outcome = 0;
  completionTokens = NaN;
  promptTokens = NaN;
  lastTokenTs = NaN;
  connectMs = NaN;
  delayMs = NaN;
  loopLagMs = NaN;
  cpuMs = NaN;
  pid = NaN;
  concurrency = NaN;
  cpuUserMs = NaN;
  cpuSystemMs = NaN;
  tokensEstimated = false;
  cause = '';
  error = '';
  /** The run id, on run_start only (making a string of it for every line would cost). */
  run = '';

  reset(): void {
    this.ts = NaN;
    this.shard = NaN;
    this.type = 0;
    this.rid = -1;
    this.attempt = NaN;
    this.attempts = NaN;
    this.status = NaN;
    this.outcome = 0;
    this.completionTokens = NaN;
    this.promptTokens = NaN;
    this.lastTokenTs = NaN;
    this.connectMs = NaN;
    this.delayMs = NaN;
    this.loopLagMs = NaN;
    this.cpuMs = NaN;
    this.pid = NaN;
    this.concurrency = NaN;
    this.cpuUserMs = NaN;
    this.cpuSystemMs = NaN;
    this.tokensEstimated = false;
    this.cause = '';
    this.error = '';
    this.run = '';
  }
}

/** Numeric fields by their JSON key. Both decoders use this one table, so they cannot disagree. */
export const NUMERIC_FIELDS = {
  ts: 'ts',
  shard: 'shard',
  attempt: 'attempt',
  attempts: 'attempts',
  status: 'status',
  completion_tokens: 'completionTokens',
  prompt_tokens: 'promptTokens',
  last_token_ts: 'lastTokenTs',
  connect_ms: 'connectMs',
  delay_ms: 'delayMs',
  loop_lag_ms: 'loopLagMs',
  cpu_ms: 'cpuMs',
  pid: 'pid',
  concurrency: 'concurrency',
  cpu_user_ms: 'cpuUserMs',
  cpu_system_ms: 'cpuSystemMs',
} as const satisfies Record<string, keyof FlatEvent>;

type NumericKey = keyof typeof NUMERIC_FIELDS;

const typeByName = new Map<string, number>(EVENT_TYPE_CODES.map((n, i) => [n, i + 1]));
const outcomeByName = new Map<string, number>(OUTCOME_CODES.map((n, i) => [n, i + 1]));

/**
 * Fill `ev` from a parsed JSON object (the path for lines the byte decoder hands back: nested
 * values, escapes, whitespace). Returns false when the object is not an event (no numeric `ts` or
 * string `type`).
 */
export function fillFromObject(o: unknown, ev: FlatEvent, ids: IdInterner): boolean {
  if (typeof o !== 'object' || o === null) return false;
  const r = o as Record<string, unknown>;
  if (typeof r.ts !== 'number' || typeof r.type !== 'string') return false;
  ev.reset();
  for (const key in NUMERIC_FIELDS) {
    const v = r[key];
    if (typeof v === 'number') ev[NUMERIC_FIELDS[key as NumericKey]] = v;
  }
  ev.type = typeByName.get(r.type) ?? 0;
  if (typeof r.cause === 'string') ev.cause = r.cause;
  if (typeof r.error === 'string') ev.error = r.error;
  if (typeof r.run === 'string' && ev.type === T.run_start) ev.run = r.run;
  if (typeof r.id === 'string') ev.rid = ids.internString(r.id);
  if (typeof r.outcome === 'string') ev.outcome = outcomeByName.get(r.outcome) ?? 0;
  ev.tokensEstimated = r.tokens_estimated === true;
  return true;
}
