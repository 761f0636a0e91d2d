import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import { ConfigError } from '../errors.js';
import { formatZodIssues } from '../config/zod-issues.js';
import { builtinProfiles } from './builtin-profiles.js';
import { simProfileSchema, type SimProfile } from './profile-schema.js';

/**
 * Resolve `--profile NAME|FILE.yaml`. A file may start from a built-in with `base: NAME`; its other
 * fields override the base's (nested `faults` sections merge field by field).
 * Throws ConfigError naming the field and what was expected.
 */
export function loadProfile(nameOrPath: string): SimProfile {
  const builtin = builtinProfiles.get(nameOrPath);
  if (builtin) return builtin;
  if (!/\.ya?ml$/i.test(nameOrPath) && !nameOrPath.includes('/')) {
    throw new ConfigError(
      `Expected \`--profile\` to be one of ${[...builtinProfiles.keys()].join(', ')} or a .yaml file, got ` +
        `\`${nameOrPath}\``,
    );
  }
  let text: string;
  try {
    text = readFileSync(nameOrPath, 'utf8');
  } catch (cause) {
    throw new ConfigError(`Cannot read profile file \`${nameOrPath}\`: ${(cause as Error).message}`, { cause });
  }
  let doc: unknown;
  try {
    doc = parseYaml(text);
  } catch (cause) {
    throw new ConfigError(`Profile file \`${nameOrPath}\` is not valid YAML: ${(cause as Error).message}`, { cause });
  }
  return parseProfile(doc ?? {}, nameOrPath);
}

/** Validate a profile object (as parsed from YAML), applying `base:` if present. */
export function parseProfile(doc: unknown, source = 'profile'): SimProfile {
  if (doc === null || typeof doc !== 'object' || Array.isArray(doc)) {
    throw new ConfigError(`Expected profile \`${source}\` to be a YAML mapping, got \`${JSON.stringify(doc)}\``);
  }
  const { base, ...fields } = doc as Record<string, unknown>;
  let merged: Record<string, unknown> = fields;
  if (base !== undefined) {
    const baseProfile = typeof base === 'string' ? builtinProfiles.get(base) : undefined;
    if (!baseProfile) {
      throw new ConfigError(
        `Expected \`base\` in ${source} to be one of ${[...builtinProfiles.keys()].join(', ')}, got ` +
          `\`${String(base)}\``,
      );
    }
    merged = deepMerge(baseProfile as unknown as Record<string, unknown>, fields);
    if (fields.name === undefined) merged.name = `${baseProfile.name}+${source}`;
  }
  const result = simProfileSchema.safeParse(merged);
  if (!result.success) {
    throw new ConfigError(`Invalid profile ${source}:\n${formatZodIssues(result.error, merged)}`);
  }
  return result.data;
}

function deepMerge(a: Record<string, unknown>, b: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...a };
  for (const [k, v] of Object.entries(b)) {
    const av = a[k];
    out[k] =
      v && typeof v === 'object' && !Array.isArray(v) && av && typeof av === 'object' && !Array.isArray(av)
        ? deepMerge(av as Record<string, unknown>, v as Record<string, unknown>)
        : v;
  }
  return out;
}
