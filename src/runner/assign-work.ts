import type { Deque } from '../util/deque.js';
import type { WorkItem } from './ipc-messages.js';

/** What dispatch reads and updates of a shard, as the coordinator sees it. */
export interface ShardSlots {
  exited: boolean;
  /** Its endpoint is down: it takes one item to probe with, and no more. */
  down: boolean;
  /** Free slots (and prefetch places) it has asked work for. */
  demand: number;
  /** Slots that would start an item at once. */
  readonly freeSlots: number;
  /** Attempts running and prefetched items waiting, as of its last pull plus what was handed it since. */
  running: number;
  local: number;
  assigned: { readonly size: number };
}

/**
 * Hand backlog items to the shards that asked for work, at most `cap` assigned across shards: each
 * item to the shard with the most free slots (a free slot starts it at once; only then prefetch places
 * fill), ties to the one asking for more. Updates the shards' counters; returns the batches to send.
 */
export function assignWork<S extends ShardSlots>(
  backlog: Deque<WorkItem>,
  shards: readonly S[],
  cap = Infinity,
): Map<S, WorkItem[]> {
  const batches = new Map<S, WorkItem[]>();
  let assigned = 0;
  if (cap !== Infinity) for (const s of shards) if (!s.exited) assigned += s.assigned.size;
  while (backlog.length > 0 && assigned < cap) {
    let best: S | undefined;
    for (const s of shards) {
      // A shard whose endpoint is down takes one item to probe with, and no more (this round's included).
      if (s.exited || s.demand <= 0 || (s.down && (s.assigned.size > 0 || batches.has(s)))) continue;
      // A shard whose endpoint is up before one whose endpoint is down (several endpoints: the other's probe waits).
      if (
        !best ||
        (best.down && !s.down) ||
        (best.down === s.down &&
          (s.freeSlots > best.freeSlots || (s.freeSlots === best.freeSlots && s.demand > best.demand)))
      )
        best = s;
    }
    if (!best) break;
    const item = backlog.shift()!;
    assigned++;
    best.demand--;
    if (best.freeSlots > 0) best.running++;
    else best.local++;
    const batch = batches.get(best);
    if (batch) batch.push(item);
    else batches.set(best, [item]);
  }
  return batches;
}
