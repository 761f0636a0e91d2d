import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import { ConfigError } from './errors.js';
import { envOf, flagOf, runOptionsSchema, type RunOptions } from './run-options.js';
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
export function resolveRunOptions(sources: RunOptionSources): RunOptions {
  const raw: Record<string, unknown> = {};
  const origin: Record<string, string> = {};
  if (sources.configFile) {
    for (const [key, { name, value }] of Object.entries(readConfigFile(sources.configFile))) {
      raw[key] = value;
      // Named as the file spells it (`max-attempts`), not as the option is called inside.
      origin[key] = `${name} in ${sources.configFile}`;
    }
  }
  // SHARDLINE_API_KEY wins over OPENAI_API_KEY: apply the generic one first.
  for (const name of ['OPENAI_API_KEY', ...Object.keys(envOf).filter((n) => n !== 'OPENAI_API_KEY')]) {
    const value = sources.env?.[name];
    if (value === undefined || value === '') continue;
    const key = envOf[name]!;
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
  return result.data;
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
  const byFlag = new Map(Object.entries(flagOf).map(([key, flag]) => [flag.replace(/^--/, ''), key]));
  byFlag.set('api-key', 'apiKey');
  byFlag.set('headers', 'headers');
  const out: Record<string, { name: string; value: unknown }> = {};
  for (const [name, value] of Object.entries(doc as Record<string, unknown>)) {
    const key = byFlag.get(name) ?? (name in flagOf ? name : undefined);
    if (!key)
      throw new ConfigError(
        `Unknown key \`${name}\` in config file \`${path}\` (keys are flag names without --, e.g. concurrency, max-attempts)`,
      );
    out[key] = { name, value: key === 'headers' && typeof value === 'string' ? [value] : value };
  }
  return out;
}
