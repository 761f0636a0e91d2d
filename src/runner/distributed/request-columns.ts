import type { RequestSpec } from '../../input/request-line.js';

/**
 * A chunk's requests as columns, not an object each: what a chunk's JSON costs is mostly its items'
 * keys and objects. For 2,048 of `bench/distributed.mjs`'s requests, `JSON.stringify` took 0.44 µs a
 * request as objects and 0.19 as columns, `JSON.parse` 0.81 and 0.30, and the JSON is 26% smaller
 * (less for ioredis to encode and decode and for Redis to hold). A worker builds each request as it
 * takes it, so the objects die young instead of living as long as their chunk.
 */
export interface RequestColumns {
  ids: string[];
  lines: number[];
  bodies: string[];
  /** Every request's `stream`, or one for all. */
  stream: boolean | boolean[];
  /** What requests other than chat carry (endpoint, path, inputs), by position. */
  other?: Record<number, Pick<RequestSpec, 'endpoint' | 'path' | 'items'>>;
}

/** Columns of `specs`, in order. */
export function toColumns(specs: readonly RequestSpec[]): RequestColumns {
  const n = specs.length;
  const ids = new Array<string>(n);
  const lines = new Array<number>(n);
  const bodies = new Array<string>(n);
  const streams = new Array<boolean>(n);
  let other: RequestColumns['other'];
  let mixed = false;
  for (let i = 0; i < n; i++) {
    const s = specs[i]!;
    ids[i] = s.id;
    lines[i] = s.lineNo;
    bodies[i] = s.body;
    streams[i] = s.stream;
    if (s.stream !== streams[0]) mixed = true;
    if (s.endpoint !== undefined || s.path !== undefined || s.items !== undefined) {
      other ??= {};
      other[i] = {
        ...(s.endpoint !== undefined ? { endpoint: s.endpoint } : {}),
        ...(s.path !== undefined ? { path: s.path } : {}),
        ...(s.items !== undefined ? { items: s.items } : {}),
      };
    }
  }
  const cols: RequestColumns = { ids, lines, bodies, stream: mixed ? streams : (streams[0] ?? true) };
  if (other) cols.other = other;
  return cols;
}

/** The request at position `i` of `cols`. */
export function specAt(cols: RequestColumns, i: number): RequestSpec {
  const spec: RequestSpec = {
    id: cols.ids[i]!,
    lineNo: cols.lines[i]!,
    body: cols.bodies[i]!,
    stream: typeof cols.stream === 'boolean' ? cols.stream : cols.stream[i]!,
  };
  const o = cols.other?.[i];
  if (o?.endpoint !== undefined) spec.endpoint = o.endpoint;
  if (o?.path !== undefined) spec.path = o.path;
  if (o?.items !== undefined) spec.items = o.items;
  return spec;
}
