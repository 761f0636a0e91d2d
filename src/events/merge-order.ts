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

/**
 * Hand every head's events to `emit` in time order, removing heads as they run out. `advance`
 * moves a head to its next event without waiting (true), says it has none (false), or that more
 * must be read first (undefined, then `refill` does so and says the same).
 */
export async function mergeInOrder<H extends MergeHead>(
  live: H[],
  emit: (head: H) => void,
  advance: (head: H) => boolean | undefined,
  refill: (head: H) => Promise<boolean>,
): Promise<void> {
  while (live.length > 0) {
    const best = earliest(live);
    const limit = earliestOthers(live, best);
    const head = live[best]!;
    for (;;) {
      emit(head);
      const more = advance(head) ?? (await refill(head));
      if (!more) live.splice(best, 1);
      if (!more || head.ev.ts > limit) break;
    }
  }
}
