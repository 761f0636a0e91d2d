import { z } from 'zod';
import { parseOptions, type OptionSpec, type TableOutput } from './option-table.js';
import { RUN_OPTIONS } from './run-option-table.js';

const LEVELS = /^(auto|\d+(,\d+)*)$/;
const rising = (s: string) =>
  s === 'auto' ||
  s.split(',').every((v, i, a) => Number(v) >= 1 && Number(v) <= 100_000 && (i === 0 || Number(v) > Number(a[i - 1])));

/**
 * `shardline sweep` options of its own; the run flags it passes on are `run`'s entries, checked as `run` checks them.
 */
export const SWEEP_OPTIONS = {
  levels: {
    flag: '--levels <list|auto>',
    schema: z
      .string()
      .regex(LEVELS, 'auto, or rising concurrency levels such as 1,2,4,8')
      .refine(rising, 'a list of rising levels from 1 to 100000, such as 1,2,4,8')
      .default('auto'),
    help:
      'concurrency levels, e.g. 1,2,4,8,16,32, or auto: doubling from 1 until two levels in a row add under 5% ' +
      'throughput or miss the SLO',
  },
  sloTtftP95Ms: {
    flag: '--slo-ttft-p95-ms <ms>',
    schema: z.coerce.number().positive().optional(),
    help: 'TTFT p95 the knee must meet',
    defaultText: "3 × the lightest stage's",
  },
  requestsPerStage: {
    flag: '--requests-per-stage <n>',
    schema: z.coerce.number().int().positive().optional(),
    help: "requests per stage, from the input's first lines",
    defaultText: 'max(200, 10 × level)',
  },
  out: {
    flag: '--out <dir>',
    schema: z.string().min(1).default('sweep'),
    help: "directory for the stages' run directories, one per level",
  },
  html: {
    flag: '--html <file>',
    schema: z.string().min(1).optional(),
    help: 'also write a self-contained page with TPM and TTFT p95/p99 vs level',
  },
  json: {
    flag: '--json',
    schema: z.boolean().default(false),
    help: 'print only the JSON result on stdout',
    defaultText: '',
  },
} satisfies Record<string, OptionSpec>;

/** The run options a sweep passes on to each stage (the rest are the run's defaults). */
export const SWEEP_RUN_KEYS = [
  'endpoint',
  'model',
  'headers',
  'shards',
] as const satisfies (keyof typeof RUN_OPTIONS)[];

/** The sweep's own meaning for run flags it passes on. */
export const SWEEP_RUN_OVERRIDES = {
  endpoint: { required: true },
  shards: { help: 'shards per stage: levels are per shard' },
} satisfies Partial<Record<(typeof SWEEP_RUN_KEYS)[number], Partial<OptionSpec>>>;

export type SweepCliOptions = TableOutput<typeof SWEEP_OPTIONS>;

/** Validate raw values keyed by option name; errors name the flag. */
export function parseSweepOptions(raw: Record<string, unknown>): SweepCliOptions & { levelList: number[] | 'auto' } {
  const o = parseOptions(SWEEP_OPTIONS, raw);
  return { ...o, levelList: o.levels === 'auto' ? 'auto' : o.levels.split(',').map(Number) };
}
