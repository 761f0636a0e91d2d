import type { z } from 'zod';
import { nameOf, tableSchema } from './option-table.js';
import { AUTO_CONCURRENCY, RUN_OPTIONS } from './run-option-table.js';

export { RESULT_ERROR_CODES } from './run-option-table.js';

/**
 * `shardline run` / `run()` options, validated once here; inner code takes the resolved form
 * (`ResolvedRunOptions`). Built from the option table, where every option is declared once.
 */
export const runOptionsSchema = tableSchema(RUN_OPTIONS);

export type RunOptionsInput = z.input<typeof runOptionsSchema>;
export type RunOptions = z.output<typeof runOptionsSchema>;

/** CLI flag (or variable) for each option key, for error messages. */
export const flagOf: Record<string, string> = Object.fromEntries(
  Object.keys(RUN_OPTIONS).map((key) => [key, nameOf(RUN_OPTIONS, key)]),
);

/** A shard's slots: the most it may run (its pool size) and, for `auto`, the adaptive range. */
export interface SlotBounds {
  max: number;
  adaptive: { min: number; max: number; start: number } | undefined;
}

/** Resolve `concurrency` (a number, or `auto[:MIN-MAX[:START]]`). */
export function slotBounds(concurrency: number | string): SlotBounds {
  if (typeof concurrency === 'number') return { max: concurrency, adaptive: undefined };
  const m = AUTO_CONCURRENCY.exec(concurrency)!;
  const min = Math.max(1, Number(m[1] ?? 1));
  const max = Math.max(min, Number(m[2] ?? 256));
  const start = Math.min(max, Math.max(min, Number(m[3] ?? 16)));
  return { max, adaptive: { min, max, start } };
}
