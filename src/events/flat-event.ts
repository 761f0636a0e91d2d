import { ENDPOINTS } from '../client/endpoints.js';
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
  'limit',
  'stale_connection',
  'keepalive_off',
  'endpoint_down',
  'endpoint_up',
  'paused',
  'keepalive_disabled',
] as const;

/** Numeric type codes, e.g. `T.attempt_end`. */
export const T = Object.fromEntries(EVENT_TYPE_CODES.map((name, i) => [name, i + 1])) as {
  readonly [K in (typeof EVENT_TYPE_CODES)[number]]: number;
};

/** `outcome` values as codes (0 = absent or unknown). */
export const OUTCOME_CODES = ['ok', 'error', 'succeeded', 'failed'] as const;
export const O = { ok: 1, error: 2, succeeded: 3, failed: 4 } as const;

/** Numeric fields by their JSON key, in column order (column i of a row holds field i). */
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
  loop_busy: 'loopBusy',
  read_hold_ms: 'readHoldMs',
  host_busy: 'hostBusy',
  socket_reads: 'socketReads',
  cpu_wait: 'cpuWait',
  retry_after_ms: 'retryAfterMs',
  server_queue_ms: 'serverQueueMs',
  items: 'items',
  upstream_index: 'upstreamIndex',
  upstreams: 'upstreams',
} as const;

/** `endpoint` values as codes: index + 1 (0 = absent: chat, as every line before endpoints were recorded). */
export const ENDPOINT_CODES = ENDPOINTS;

/** Row columns after the numeric fields. */
export const C_TYPE = 26;
export const C_OUTCOME = 27;
export const C_ESTIMATED = 28;
/** Interned request id, -1 when none (set by whoever interns, from the id's bytes). */
export const C_RID = 29;
/** The id's bytes: [start, end) in `idBuf` (or in a batch's id bytes), -1 when the event has none. */
export const C_ID_START = 30;
export const C_ID_END = 31;
/** Index of the event's [cause, error, run] in `strings`, -1 when it has none of them. */
export const C_STRINGS = 32;
/** Endpoint code (index of ENDPOINT_CODES + 1), 0 when absent. */
export const C_ENDPOINT = 33;
/** Numbers per event row. */
export const ROW_WIDTH = 34;

const BLANK = new Float64Array(ROW_WIDTH).fill(NaN);
BLANK[C_TYPE] = 0;
BLANK[C_OUTCOME] = 0;
BLANK[C_ESTIMATED] = 0;
BLANK[C_RID] = -1;
BLANK[C_ID_START] = -1;
BLANK[C_ID_END] = -1;
BLANK[C_STRINGS] = -1;
BLANK[C_ENDPOINT] = 0;
const BLANK_BYTES = new Uint8Array(0);

/**
 * One event as the report reads it: the fields it uses, as a view over one row of a Float64Array,
 * so reading a large log allocates nothing per line and a reader thread can decode rows straight
 * into shared memory. Absent numbers are NaN, absent strings ''. See docs/events.md for the fields.
 */
export class FlatEvent {
  /** The row's buffer: its own, or shared slots' (see shared-slots.ts). */
  rows: Float64Array;
  /** Index of the row's first column in `rows`. */
  base = 0;
  /** Where C_STRINGS points. */
  strings: string[] = [];
  /** The buffer C_ID_START/C_ID_END point into, for this event. */
  idBuf: Uint8Array = BLANK_BYTES;

  constructor(rows: Float64Array = new Float64Array(ROW_WIDTH)) {
    this.rows = rows;
    this.reset();
  }

  /** Make the row blank: no fields, no id, no strings (`strings` itself is the owner's to clear). */
  reset(): void {
    // A loop: TypedArray#set cost 0.23 µs a call here, as much as decoding the rest of the line.
    const rows = this.rows;
    const base = this.base;
    for (let c = 0; c < ROW_WIDTH; c++) rows[base + c] = BLANK[c]!;
  }

  private col(c: number): number {
    return this.rows[this.base + c]!;
  }

  private setCol(c: number, v: number): void {
    this.rows[this.base + c] = v;
  }

  get ts(): number {
    return this.col(0);
  }
  set ts(v: number) {
    this.setCol(0, v);
  }
  get shard(): number {
    return this.col(1);
  }
  set shard(v: number) {
    this.setCol(1, v);
  }
  get attempt(): number {
    return this.col(2);
  }
  get attempts(): number {
    return this.col(3);
  }
  get status(): number {
    return this.col(4);
  }
  get completionTokens(): number {
    return this.col(5);
  }
  get promptTokens(): number {
    return this.col(6);
  }
  get lastTokenTs(): number {
    return this.col(7);
  }
  get connectMs(): number {
    return this.col(8);
  }
  get delayMs(): number {
    return this.col(9);
  }
  get loopLagMs(): number {
    return this.col(10);
  }
  get cpuMs(): number {
    return this.col(11);
  }
  get pid(): number {
    return this.col(12);
  }
  get concurrency(): number {
    return this.col(13);
  }
  get cpuUserMs(): number {
    return this.col(14);
  }
  get cpuSystemMs(): number {
    return this.col(15);
  }
  get loopBusy(): number {
    return this.col(16);
  }
  get readHoldMs(): number {
    return this.col(17);
  }
  get hostBusy(): number {
    return this.col(18);
  }
  get socketReads(): number {
    return this.col(19);
  }
  get cpuWait(): number {
    return this.col(20);
  }
  get retryAfterMs(): number {
    return this.col(21);
  }
  get serverQueueMs(): number {
    return this.col(22);
  }
  get items(): number {
    return this.col(23);
  }
  /** shard_start: the shard's place in `--endpoint`'s list. */
  get upstreamIndex(): number {
    return this.col(24);
  }
  /** shard_start: how many endpoints the run has (NaN in logs from before it was recorded). */
  get upstreams(): number {
    return this.col(25);
  }
  /** Endpoint code (ENDPOINT_CODES index + 1), 0 when absent (chat). */
  get endpoint(): number {
    return this.col(C_ENDPOINT);
  }
  /** Type code (`T`), 0 for a type this version does not know. */
  get type(): number {
    return this.col(C_TYPE);
  }
  /** Outcome code (`O`), 0 when absent. */
  get outcome(): number {
    return this.col(C_OUTCOME);
  }
  get tokensEstimated(): boolean {
    return this.col(C_ESTIMATED) === 1;
  }
  /** Interned request id, -1 when the event has none. */
  get rid(): number {
    return this.col(C_RID);
  }
  set rid(v: number) {
    this.setCol(C_RID, v);
  }
  get hasId(): boolean {
    return this.col(C_ID_START) >= 0;
  }
  get idStart(): number {
    return this.col(C_ID_START);
  }
  get idEnd(): number {
    return this.col(C_ID_END);
  }
  get cause(): string {
    return this.str(0);
  }
  get error(): string {
    return this.str(1);
  }
  /** The run id, on run_start only (making a string of it for every line would cost). */
  get run(): string {
    return this.str(2);
  }
  /** The shard's server (URL without credentials), on shard_start only: the same string as `run`. */
  get upstream(): string {
    return this.str(2);
  }

  /** Set string field 0 (cause), 1 (error) or 2 (the run id on run_start, the upstream on shard_start). */
  setString(which: 0 | 1 | 2, v: string): void {
    let at = this.col(C_STRINGS);
    if (at < 0) {
      at = this.strings.length;
      this.strings.push('', '', '');
      this.setCol(C_STRINGS, at);
    }
    this.strings[at + which] = v;
  }

  private str(which: number): string {
    const at = this.col(C_STRINGS);
    return at < 0 ? '' : this.strings[at + which]!;
  }
}

/**
 * The same fields as plain properties: what the report's aggregation reads. Copying a row into
 * one is cheaper than reading the row through FlatEvent's getters from a large function, where the
 * engine does not inline them (each read then boxes its number).
 */
export class EventRecord {
  ts = NaN;
  shard = NaN;
  attempt = NaN;
  attempts = NaN;
  status = NaN;
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
  loopBusy = NaN;
  readHoldMs = NaN;
  hostBusy = NaN;
  socketReads = NaN;
  cpuWait = NaN;
  retryAfterMs = NaN;
  serverQueueMs = NaN;
  items = NaN;
  upstreamIndex = NaN;
  upstreams = NaN;
  type = 0;
  /** Endpoint code (ENDPOINT_CODES index + 1), 0 when absent (chat). */
  endpoint = 0;
  outcome = 0;
  tokensEstimated = false;
  /** Interned request id, -1 when none. */
  rid = -1;
  cause = '';
  error = '';
  run = '';

  /** Copy `ev`'s fields in (its `rid` must already be interned). */
  copyFrom(ev: FlatEvent): void {
    const r = ev.rows;
    const b = ev.base;
    this.ts = r[b]!;
    this.shard = r[b + 1]!;
    this.attempt = r[b + 2]!;
    this.attempts = r[b + 3]!;
    this.status = r[b + 4]!;
    this.completionTokens = r[b + 5]!;
    this.promptTokens = r[b + 6]!;
    this.lastTokenTs = r[b + 7]!;
    this.connectMs = r[b + 8]!;
    this.delayMs = r[b + 9]!;
    this.loopLagMs = r[b + 10]!;
    this.cpuMs = r[b + 11]!;
    this.pid = r[b + 12]!;
    this.concurrency = r[b + 13]!;
    this.cpuUserMs = r[b + 14]!;
    this.cpuSystemMs = r[b + 15]!;
    this.loopBusy = r[b + 16]!;
    this.readHoldMs = r[b + 17]!;
    this.hostBusy = r[b + 18]!;
    this.socketReads = r[b + 19]!;
    this.cpuWait = r[b + 20]!;
    this.retryAfterMs = r[b + 21]!;
    this.serverQueueMs = r[b + 22]!;
    this.items = r[b + 23]!;
    this.upstreamIndex = r[b + 24]!;
    this.upstreams = r[b + 25]!;
    this.type = r[b + C_TYPE]!;
    this.endpoint = r[b + C_ENDPOINT]!;
    this.outcome = r[b + C_OUTCOME]!;
    this.tokensEstimated = r[b + C_ESTIMATED] === 1;
    this.rid = r[b + C_RID]!;
    const s = r[b + C_STRINGS]!;
    if (s < 0) this.cause = this.error = this.run = '';
    else {
      this.cause = ev.strings[s]!;
      this.error = ev.strings[s + 1]!;
      this.run = ev.strings[s + 2]!;
    }
  }
}

type NumericKey = keyof typeof NUMERIC_FIELDS;
const NUMERIC_KEYS = Object.keys(NUMERIC_FIELDS) as NumericKey[];

const typeByName = new Map<string, number>(EVENT_TYPE_CODES.map((n, i) => [n, i + 1]));
const outcomeByName = new Map<string, number>(OUTCOME_CODES.map((n, i) => [n, i + 1]));
const endpointByName = new Map<string, number>(ENDPOINT_CODES.map((n, i) => [n, i + 1]));

/**
 * Fill `ev` from a parsed JSON object (the path for lines the byte decoder hands back: nested
 * values, escapes, whitespace). Returns false when the object is not an event (no numeric `ts` or
 * string `type`). The id, if any, is left as bytes for the caller to intern, like the decoder does.
 */
export function fillFromObject(o: unknown, ev: FlatEvent): boolean {
  if (typeof o !== 'object' || o === null) return false;
  const r = o as Record<string, unknown>;
  if (typeof r.ts !== 'number' || typeof r.type !== 'string') return false;
  ev.reset();
  const row = ev.rows;
  const base = ev.base;
  NUMERIC_KEYS.forEach((key, col) => {
    const v = r[key];
    if (typeof v === 'number') row[base + col] = v;
  });
  const type = typeByName.get(r.type) ?? 0;
  row[base + C_TYPE] = type;
  if (typeof r.cause === 'string') ev.setString(0, r.cause);
  if (typeof r.error === 'string') ev.setString(1, r.error);
  if (typeof r.run === 'string' && type === T.run_start) ev.setString(2, r.run);
  if (typeof r.upstream === 'string' && type === T.shard_start) ev.setString(2, r.upstream);
  if (typeof r.id === 'string') {
    ev.idBuf = Buffer.from(r.id, 'utf8');
    row[base + C_ID_START] = 0;
    row[base + C_ID_END] = ev.idBuf.length;
  }
  if (typeof r.outcome === 'string') row[base + C_OUTCOME] = outcomeByName.get(r.outcome) ?? 0;
  if (typeof r.endpoint === 'string') row[base + C_ENDPOINT] = endpointByName.get(r.endpoint) ?? 0;
  row[base + C_ESTIMATED] = r.tokens_estimated === true ? 1 : 0;
  return true;
}
