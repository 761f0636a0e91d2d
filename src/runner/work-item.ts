import type { EventPayloads } from '../events/event-types.js';
import type { RequestSpec } from '../input/request-line.js';
import type { LiveMetrics } from './live/live-metrics.js';
import type { DoneItem, RetryItem, WorkItem } from './ipc-messages.js';
import type { ResultSink } from './output/result-sink.js';
import { chargeCorrection } from './pacing/budget-gate.js';
import type { Budget } from './pacing/rate-budget.js';
import { tallyDone, type RunTotals } from './run-totals.js';

/** A request read from the source, as a shard is handed it for its first attempt. */
export function workItemOf(spec: RequestSpec): WorkItem {
  const item: WorkItem = { id: spec.id, lineNo: spec.lineNo, body: spec.body, stream: spec.stream, attempt: 1 };
  if (spec.endpoint) item.endpoint = spec.endpoint;
  if (spec.path) item.path = spec.path;
  if (spec.items !== undefined) item.items = spec.items;
  return item;
}

/** The `enqueue` event of a request's first attempt. */
export function enqueuePayload(item: WorkItem): EventPayloads['enqueue'] {
  const enqueue: EventPayloads['enqueue'] = { id: item.id, line: item.lineNo };
  if (item.endpoint) enqueue.endpoint = item.endpoint;
  return enqueue;
}

/** What the side handing out work keeps of each request's end. */
export interface Books {
  budget: Budget;
  sink: ResultSink;
  live: LiveMetrics;
  totals: RunTotals;
  now: () => number;
}

/** A request ended on its shard: correct its budget charge, write its result, count it. */
export function bookDone(b: Books, item: WorkItem, done: DoneItem): void {
  if (item.charge && done.outcome === 'succeeded') b.budget.adjust(chargeCorrection(item.charge, done));
  b.sink.writeResult(done.id, done.resultLine, done);
  b.live.recordDone(done, b.now());
  tallyDone(b.totals, done);
}

/** A request's attempt failed into a retry: count it and move the item to its next attempt. */
export function bookRetry(b: Books, item: WorkItem, retry: RetryItem): void {
  b.totals.retries++;
  b.live.recordRetry(retry);
  item.attempt = retry.attempt;
  if (retry.free) item.free = retry.free;
}
