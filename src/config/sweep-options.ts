import { z } from 'zod';
import { ConfigError } from './errors.js';
import { formatZodIssues } from './zod-issues.js';

const LEVELS = /^(auto|\d+(,\d+)*)$/;

/** `shardline sweep` options of its own (the run flags it passes on are validated as `run`'s). */
export const sweepOptionsSchema = z.object({
  levels: z
    .string()
    .regex(LEVELS, 'auto, or rising concurrency levels such as 1,2,4,8')
    .refine(
      (s) =>
        s === 'auto' ||
        s
          .split(',')
          .every((v, i, a) => Number(v) >= 1 && Number(v) <= 100_000 && (i === 0 || Number(v) > Number(a[i - 1]))),
      'rising levels from 1 to 100000, such as 1,2,4,8',
    )
    .default('auto')
    .describe(
      'Concurrency levels, or auto: 1, 2, 4, … up to 512 until two levels in a row add under 5% throughput or miss the SLO. @default auto',
    ),
  sloTtftP95Ms: z.coerce
    .number()
    .positive()
    .optional()
    .describe("TTFT p95 bound for the knee, ms; 3 × the lightest stage's when absent."),
  requestsPerStage: z.coerce
    .number()
    .int()
    .positive()
    .optional()
    .describe("Requests per stage, from the input's first lines. @default max(200, 10 × level)"),
  out: z.string().min(1).default('sweep').describe("Directory for the stages' run directories. @default sweep"),
});
export type SweepCliOptions = z.output<typeof sweepOptionsSchema>;

const FLAGS: Record<string, string> = {
  levels: '--levels',
  sloTtftP95Ms: '--slo-ttft-p95-ms',
  requestsPerStage: '--requests-per-stage',
  out: '--out',
};

/** Validate raw CLI values; errors name the flag. */
export function parseSweepOptions(raw: Record<string, unknown>): SweepCliOptions & { levelList: number[] | 'auto' } {
  const result = sweepOptionsSchema.safeParse(raw);
  if (!result.success)
    throw new ConfigError(formatZodIssues(result.error, raw, (p) => FLAGS[String(p[0])] ?? `--${String(p[0])}`));
  const o = result.data;
  return { ...o, levelList: o.levels === 'auto' ? 'auto' : o.levels.split(',').map(Number) };
}
