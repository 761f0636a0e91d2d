import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import { ConfigError } from '../errors.js';
import { configKeys, envKeys } from './option-table.js';
import { RUN_OPTIONS } from './run-option-table.js';
import { resolveRun, type ResolvedRunOptions } from './resolved-run-options.js';
import { flagOf, runOptionsSchema } from './run-options.js';
import { formatZodIssues } from './zod-issues.js';

export interface RunOptionSources {
  /** Values from command-line flags, keyed by option name (undefined = not given). */
  flags?: Record<string, unknown>;
  /** Environment (defaults to none, so library callers are not surprised by their env). */
  env?: NodeJS.ProcessEnv;
  /** Path of a YAML config file whose keys are flag names without `--` (or option names). */
  configFile?: string;
}

/**
 * Resolve run options with precedence flag > environment > config file > default. Errors name the
 * flag, variable or config key the bad value came from.
 */
export function resolveRunOptions(sources: RunOptionSources): ResolvedRunOptions {
  const raw: Record<string, unknown> = {};
  const origin: Record<string, string> = {};
  if (sources.configFile) {
    for (const [key, { name, value }] of Object.entries(readConfigFile(sources.configFile))) {
      raw[key] = value;
      // Named as the file spells it (`max-attempts`), not as the option is called inside.
      origin[key] = `${name} in ${sources.configFile}`;
    }
  }
  // In the table's order, so SHARDLINE_API_KEY wins over OPENAI_API_KEY.
  for (const [name, key] of envKeys(RUN_OPTIONS)) {
    const value = sources.env?.[name];
    if (value === undefined || value === '') continue;
    raw[key] = value;
    origin[key] = name;
  }
  for (const [key, value] of Object.entries(sources.flags ?? {})) {
    if (value === undefined) continue;
    if (Array.isArray(value) && value.length === 0 && raw[key] !== undefined) continue;
    raw[key] = value;
    origin[key] = flagOf[key] ?? key;
  }
  const result = runOptionsSchema.safeParse(raw);
  if (!result.success) {
    throw new ConfigError(
      formatZodIssues(result.error, raw, (path) => {
        const key = String(path[0]);
        return origin[key] ?? flagOf[key] ?? key;
      }),
    );
  }
  return resolveRun(result.data);
}

/** The file's entries by option key, each with the name the file used for it. */
function readConfigFile(path: string): Record<string, { name: string; value: unknown }> {
  let doc: unknown;
  try {
    doc = parseYaml(readFileSync(path, 'utf8'));
  } catch (cause) {
    throw new ConfigError(`Cannot read config file \`${path}\`: ${(cause as Error).message}`, { cause });
  }
  if (doc === null || doc === undefined) return {};
  if (typeof doc !== 'object' || Array.isArray(doc))
    throw new ConfigError(`Expected config file \`${path}\` to be a YAML mapping`);
  const keys = configKeys(RUN_OPTIONS);
  const out: Record<string, { name: string; value: unknown }> = {};
  for (const [name, given] of Object.entries(doc as Record<string, unknown>)) {
    const found = keys.get(name);
    if (!found)
      throw new ConfigError(
        `Unknown key \`${name}\` in config file \`${path}\` ` +
          '(keys are flag names without --, e.g. concurrency, max-attempts)',
      );
    const { key, negated } = found;
    // `no-keep-alive: true` means keep-alive off, as the flag does.
    const value = negated && typeof given === 'boolean' ? !given : given;
    out[key] = { name, value: key === 'headers' && typeof value === 'string' ? [value] : value };
  }
  return out;
}
