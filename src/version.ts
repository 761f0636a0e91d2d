import { readFileSync } from 'node:fs';

/** shardline's version, read from package.json (two levels above dist/ or src/ files). */
export const VERSION: string = (
  JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }
).version;
