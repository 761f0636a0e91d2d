import type { Clock } from '../../util/clock.js';
import type { WorkItem } from '../ipc-messages.js';
import type { Budget } from './rate-budget.js';

type Charge = WorkItem['charge'];

/** Whether requests must be costed in tokens: the run's budget counts them, or a server has a `tpm` of its own. */
export function costsTokens(budget: Budget, upstreams: readonly { tpm?: number }[]): boolean {
  return budget.countsTokens || upstreams.some((u) => u.tpm !== undefined);
}

/** What a request costs a token budget before it runs: its prompt estimate and its max_tokens (0 uncharged). */
export function chargedTokens(charge: Charge): number {
  return charge ? charge.promptTokens + (charge.maxTokens ?? 0) : 0;
}

/**
 * How far a charge was off once the answer's usage is known (positive: it cost more). Providers count the
 * prompt as their tokenizer does, and max_tokens when set (else the completion).
 */
export function chargeCorrection(
  charge: NonNullable<Charge>,
  used: { promptTokens: number; completionTokens: number },
): number {
  return used.promptTokens + (charge.maxTokens ?? used.completionTokens) - chargedTokens(charge);
}

/**
 * Call `go` once `budget` has room for `item` (charging it), asking again when the budget says; at once
 * when `stopping()` (what is left only has to be let go of).
 */
export function whenBudgetAllows(
  budget: Budget,
  item: WorkItem,
  clock: Clock,
  stopping: () => boolean,
  go: () => void,
): void {
  const waitMs = stopping() ? 0 : budget.tryTake(chargedTokens(item.charge), clock());
  if (waitMs === 0) return go();
  setTimeout(() => whenBudgetAllows(budget, item, clock, stopping, go), waitMs);
}

/**
 * Call `go` at `dueTs` on the event clock, not after a delay from now: Node's timers count from the loop's
 * cached time and can fire a millisecond or more early.
 */
export function atTime(dueTs: number, clock: Clock, go: () => void): void {
  const left = dueTs - clock();
  if (left > 0) setTimeout(() => atTime(dueTs, clock, go), Math.max(1, left));
  else go();
}
