/**
 * The k-way merge of sorted event files by time, shared by every reader: pick the file whose next
 * event is earliest, and drain it while it stays so. Linear in the number of files per pick; a
 * binary heap would win past a few dozen files, and runs have one file per shard plus one.
 */
export interface MergeHead {
  /** The file's next event. */
  readonly ev: { readonly ts: number };
}

/** Index of the head with the smallest ts (the first of equals). */
export function earliest(heads: readonly MergeHead[]): number {
  let best = 0;
  let bestTs = heads[0]!.ev.ts;
  for (let c = 1; c < heads.length; c++) {
    const ts = heads[c]!.ev.ts;
    if (ts < bestTs) {
      best = c;
      bestTs = ts;
    }
  }
  return best;
}

/**
 * The smallest ts among the heads other than `best`: the earliest head can be drained while it
 * is not later than this, without rescanning the others for each event.
 */
export function earliestOthers(heads: readonly MergeHead[], best: number): number {
  let limit = Infinity;
  for (let c = 0; c < heads.length; c++) if (c !== best && heads[c]!.ev.ts < limit) limit = heads[c]!.ev.ts;
  return limit;
}
