import { z } from 'zod';
import { ConfigError } from './errors.js';
import { formatZodIssues } from './zod-issues.js';

/** `shardline sim` options after validation. */
export const simOptionsSchema = z.object({
  host: z.string().min(1).default('127.0.0.1').describe('Address to bind.'),
  port: z.coerce.number().int().min(0).max(65535).default(8000).describe('Port; 0 picks a free one.'),
  profile: z.string().min(1).default('realistic').describe('Built-in profile name or YAML file.'),
  seed: z.coerce.number().int().min(0).default(1).describe('Seed for faults and jitter.'),
});
export type SimOptions = z.output<typeof simOptionsSchema>;

/** Validate raw CLI values; errors name the flag. */
export function parseSimOptions(raw: Record<string, unknown>): SimOptions {
  const result = simOptionsSchema.safeParse(raw);
  if (!result.success) throw new ConfigError(formatZodIssues(result.error, raw, (p) => `--${String(p[0])}`));
  return result.data;
}
