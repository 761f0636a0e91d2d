import { z } from 'zod';
import { parseOptions, type OptionSpec, type TableOutput } from './option-table.js';

/** `shardline sim` options. */
export const SIM_OPTIONS = {
  host: { flag: '--host <host>', schema: z.string().min(1).default('127.0.0.1'), help: 'address to bind' },
  port: {
    flag: '--port <port>',
    schema: z.coerce.number().int().min(0).max(65535).default(8000),
    help: 'port to listen on (0 = pick a free port)',
  },
  profile: {
    flag: '--profile <name|file.yaml>',
    schema: z.string().min(1).default('realistic'),
    help: 'built-in profile (see --list-profiles) or YAML file',
  },
  seed: { flag: '--seed <n>', schema: z.coerce.number().int().min(0).default(1), help: 'seed for faults and jitter' },
  listProfiles: {
    flag: '--list-profiles',
    schema: z.boolean().default(false),
    help: 'print the built-in profiles with their capacity and exit',
    defaultText: '',
  },
} satisfies Record<string, OptionSpec>;

export type SimOptions = TableOutput<typeof SIM_OPTIONS>;

/** Validate raw values keyed by option name; errors name the flag. */
export function parseSimOptions(raw: Record<string, unknown>): SimOptions {
  return parseOptions(SIM_OPTIONS, raw);
}
