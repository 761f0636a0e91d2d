import { CAUSES } from './event-types.js';
import {
  C_ENDPOINT,
  C_ESTIMATED,
  C_ID_END,
  C_ID_START,
  C_OUTCOME,
  C_TYPE,
  ENDPOINT_CODES,
  EVENT_TYPE_CODES,
  NUMERIC_FIELDS,
  OUTCOME_CODES,
  T,
  type FlatEvent,
} from './flat-event.js';

/*
 * Decodes one event line straight from the file's bytes into a FlatEvent row, without making a JS
 * object or string per line. Why not JSON.parse: on the 1,000,000-event log of bench/analyze.mjs
 * (node 20, this machine, one run: scratch measurement quoted in BENCHMARKS.md) JSON.parse of each
 * line cost 1.00 µs, this decoder 0.34 µs, and JSON.parse also leaves an object per line for the
 * GC. Numbers are decoded exactly as JSON.parse does (an integer mantissa below 2^53 divided once
 * by an exact power of ten is correctly rounded); anything this fast path does not take —
 * whitespace, escapes, control characters, nested values, exponents, long mantissas — returns -1
 * so the caller falls back to JSON.parse, which also decides whether the line is malformed.
 * Property-tested against JSON.parse in test/flat-decoder.test.ts.
 */

// Key codes: the numeric fields first, in NUMERIC_FIELDS order, which is also their row column.
const NUMERIC_KEYS = Object.keys(NUMERIC_FIELDS);
const K_CAUSE = NUMERIC_KEYS.length;
const K_ERROR = K_CAUSE + 1;
const K_RUN = K_CAUSE + 2;
const K_ID = K_CAUSE + 3;
const K_TYPE = K_CAUSE + 4;
const K_OUTCOME = K_CAUSE + 5;
const K_ESTIMATED = K_CAUSE + 6;
const K_ENDPOINT = K_CAUSE + 7;
const K_UPSTREAM = K_CAUSE + 8;

interface Named {
  bytes: Uint8Array;
  code: number;
}

/** Keys the writer emits that the report does not read: known, so the key guess below covers them. */
const IGNORED_KEYS = [
  'v',
  'line',
  'requests',
  'replaces',
  'backlog',
  'backoff',
  'rerun',
  'in_flight',
  'limit',
  'conns_open',
  'rss_mb',
  'budget_exhausted',
  'resumed',
  'code',
  'signal',
  'reason',
  'requeued',
  'status_text',
  'succeeded',
  'failed',
  'rejected',
  'config',
  'after_stream',
  'after',
  'stale',
  'probes',
  'gave_up',
];
const K_IGNORED = K_UPSTREAM + 1;
const ALL_KEYS = [
  ...NUMERIC_KEYS,
  'cause',
  'error',
  'run',
  'id',
  'type',
  'outcome',
  'tokens_estimated',
  'endpoint',
  'upstream',
  ...IGNORED_KEYS,
];
const KEYS_BY_LEN = byLength(ALL_KEYS);
/** Each key's bytes after its opening quote, closing quote and colon included: `ts":`. */
const KEY_TAILS = ALL_KEYS.map((k) => Buffer.from(`${k}":`));
/**
 * The key that last followed each key (index ALL_KEYS.length: the line's first key). Lines of one
 * type repeat their key order, so checking the guess's bytes in place usually replaces scanning
 * for the closing quote and looking the name up. Only a guess: a miss takes the scan.
 */
const NEXT_KEY = new Int32Array(ALL_KEYS.length + 1).fill(-1);
const TYPES_BY_LEN = byLength(EVENT_TYPE_CODES, 1);
const OUTCOMES_BY_LEN = byLength(OUTCOME_CODES, 1);
const ENDPOINTS_BY_LEN = byLength(ENDPOINT_CODES, 1);
const CAUSES_BY_LEN = byLength(CAUSES);
const TRUE = Buffer.from('true');
const FALSE = Buffer.from('false');
const NULL = Buffer.from('null');
const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const COMMA = 0x2c;
const COLON = 0x3a;
const OPEN = 0x7b;
const CLOSE = 0x7d;
const MINUS = 0x2d;
const DOT = 0x2e;
const ZERO = 0x30;
const NINE = 0x39;

/** Where the last parseNumber stopped; a module variable so the hot path returns a plain number. */
let numEnd = 0;

/**
 * Decode the JSON object starting at `buf[start]` (reading no further than `end`) into `ev`, and
 * return the index just past its closing brace — the caller checks that a newline follows. -1
 * when the line needs the JSON.parse path (which then decides whether it is an event at all).
 * Stops at any control character inside a string, so it never runs on into the next line.
 */
export function decodeFlatLine(buf: Buffer, start: number, end: number, ev: FlatEvent): number {
  if (buf[start] !== OPEN || buf[start + 1] !== QUOTE) return -1;
  ev.reset();
  ev.idBuf = buf;
  const row = ev.rows;
  const base = ev.base;
  let typeSeen = false;
  let runAt = -1;
  let runEnd = -1;
  let upAt = -1;
  let upEnd = -1;
  let i = start + 1;
  let prev = ALL_KEYS.length;
  for (;;) {
    if (buf[i] !== QUOTE) return -1;
    const k = i + 1;
    let found = -1;
    const guess = NEXT_KEY[prev]!;
    if (guess >= 0) {
      const tail = KEY_TAILS[guess]!;
      let l = 0;
      while (l < tail.length && buf[k + l] === tail[l]) l++;
      if (l === tail.length) {
        found = guess;
        i = k + l;
      }
    }
    if (found < 0) {
      let j = k;
      for (; j < end; j++) {
        const b = buf[j]!;
        if (b === QUOTE) break;
        if (b === BACKSLASH || b < 0x20) return -1;
      }
      if (j >= end || buf[j + 1] !== COLON) return -1;
      found = lookup(KEYS_BY_LEN, buf, k, j - k, -1);
      if (found >= 0) NEXT_KEY[prev] = found;
      i = j + 2;
    }
    prev = found < 0 ? ALL_KEYS.length : found;
    const key = found < K_IGNORED ? found : -1;
    const c = buf[i];
    if (c === QUOTE) {
      const a = i + 1;
      let q = a;
      for (; q < end; q++) {
        const b = buf[q]!;
        if (b === QUOTE) break;
        if (b === BACKSLASH || b < 0x20) return -1;
      }
      if (q >= end) return -1;
      if (key === K_ID) {
        row[base + C_ID_START] = a;
        row[base + C_ID_END] = q;
      } else if (key === K_TYPE) {
        row[base + C_TYPE] = lookup(TYPES_BY_LEN, buf, a, q - a, 0);
        typeSeen = true;
      } else if (key === K_OUTCOME) row[base + C_OUTCOME] = lookup(OUTCOMES_BY_LEN, buf, a, q - a, 0);
      else if (key === K_ENDPOINT) row[base + C_ENDPOINT] = lookup(ENDPOINTS_BY_LEN, buf, a, q - a, 0);
      else if (key === K_RUN) {
        // Only run_start needs the run id as a string: don't make one per line.
        runAt = a;
        runEnd = q;
      } else if (key === K_UPSTREAM) {
        upAt = a;
        upEnd = q;
      } else if (key === K_CAUSE) {
        const known = lookup(CAUSES_BY_LEN, buf, a, q - a, -1);
        ev.setString(0, known >= 0 ? CAUSES[known]! : buf.toString('utf8', a, q));
      } else if (key === K_ERROR) ev.setString(1, buf.toString('utf8', a, q));
      else if (key >= 0) typeSeen = clear(ev, key, typeSeen);
      i = q + 1;
    } else if (c === 0x74 || c === 0x66 || c === 0x6e) {
      const lit = c === 0x74 ? TRUE : c === 0x66 ? FALSE : NULL;
      for (let l = 0; l < lit.length; l++) if (buf[i + l] !== lit[l]) return -1;
      if (key === K_ESTIMATED) row[base + C_ESTIMATED] = c === 0x74 ? 1 : 0;
      else if (key === K_RUN) runAt = -1;
      else if (key === K_UPSTREAM) upAt = -1;
      else if (key >= 0) typeSeen = clear(ev, key, typeSeen);
      i += lit.length;
    } else if (c === OPEN || c === 0x5b) {
      return -1;
    } else {
      const v = parseNumber(buf, i, end);
      if (Number.isNaN(v)) return -1;
      i = numEnd;
      if (key >= 0 && key < K_CAUSE) row[base + key] = v;
      else if (key === K_RUN) runAt = -1;
      else if (key >= 0) typeSeen = clear(ev, key, typeSeen);
    }
    const d = buf[i];
    if (d === COMMA) i++;
    else if (d === CLOSE) break;
    else return -1;
  }
  if (runAt >= 0 && row[base + C_TYPE] === T.run_start) ev.setString(2, buf.toString('utf8', runAt, runEnd));
  // A shard's server, on shard_start only: the third string's other use (see FlatEvent.upstream).
  if (upAt >= 0 && row[base + C_TYPE] === T.shard_start) ev.setString(2, buf.toString('utf8', upAt, upEnd));
  return typeSeen && !Number.isNaN(row[base]!) ? i + 1 : -1;
}

/**
 * A value of the wrong JSON type leaves the field absent, as fillFromObject's typeof checks do
 * (a non-string `type` makes the line no event). Returns the new typeSeen.
 */
function clear(ev: FlatEvent, key: number, typeSeen: boolean): boolean {
  const row = ev.rows;
  const base = ev.base;
  if (key < K_CAUSE) row[base + key] = NaN;
  else if (key === K_CAUSE) ev.setString(0, '');
  else if (key === K_ERROR) ev.setString(1, '');
  else if (key === K_ID) row[base + C_ID_START] = row[base + C_ID_END] = -1;
  else if (key === K_OUTCOME) row[base + C_OUTCOME] = 0;
  else if (key === K_ENDPOINT) row[base + C_ENDPOINT] = 0;
  else if (key === K_ESTIMATED) row[base + C_ESTIMATED] = 0;
  else if (key === K_TYPE) return false;
  return typeSeen;
}

/** A JSON number at `buf[i]`; NaN when it is not one. Sets numEnd. */
function parseNumber(buf: Buffer, i: number, end: number): number {
  const start = i;
  const neg = buf[i] === MINUS;
  if (neg) i++;
  let c = buf[i] ?? 0;
  if (c < ZERO || c > NINE) return NaN;
  let n = 0;
  if (c === ZERO) {
    c = buf[++i] ?? 0;
    if (c >= ZERO && c <= NINE) return NaN;
  } else {
    while (c >= ZERO && c <= NINE && i < end) {
      n = n * 10 + (c - ZERO);
      c = buf[++i] ?? 0;
    }
  }
  let scale = 0;
  if (c === DOT) {
    c = buf[++i] ?? 0;
    if (c < ZERO || c > NINE) return NaN;
    while (c >= ZERO && c <= NINE && i < end) {
      n = n * 10 + (c - ZERO);
      scale++;
      c = buf[++i] ?? 0;
    }
  }
  if (c === 0x65 || c === 0x45 || n > Number.MAX_SAFE_INTEGER || scale > 22) return slowNumber(buf, start, end);
  numEnd = i;
  const v = scale === 0 ? n : n / POW10[scale]!;
  return neg ? -v : v;
}

const POW10 = Array.from({ length: 23 }, (_, k) => 10 ** k);

/** Exponents and long mantissas: let the engine's own conversion decide. */
function slowNumber(buf: Buffer, start: number, end: number): number {
  let i = start;
  while (i < end && buf[i] !== COMMA && buf[i] !== CLOSE && buf[i]! >= 0x20) i++;
  numEnd = i;
  const text = buf.toString('latin1', start, i);
  if (!/^-?(0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?$/.test(text)) return NaN;
  return Number(text);
}

/** Names grouped by byte length for lookup; each name's code is its index plus `base`. */
function byLength(names: readonly string[], base = 0): Named[][] {
  const out: Named[][] = [];
  names.forEach((name, i) => {
    const bytes = Buffer.from(name);
    (out[bytes.length] ??= []).push({ bytes, code: i + base });
  });
  return out;
}

/** The code of the name in `buf[at, at + len)`, or `miss`. */
function lookup(table: Named[][], buf: Buffer, at: number, len: number, miss: number): number {
  const candidates = table[len];
  if (candidates !== undefined) {
    outer: for (const cand of candidates) {
      const b = cand.bytes;
      for (let i = 0; i < len; i++) if (buf[at + i] !== b[i]) continue outer;
      return cand.code;
    }
  }
  return miss;
}
