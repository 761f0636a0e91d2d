import { fileURLToPath } from 'node:url';

/**
 * Path of a compiled file that must run in another process or thread (shard entry, worker). From
 * the build these sit beside this module; when this module runs from TypeScript sources (tests),
 * they are taken from `dist/`, which `npm test` builds first.
 */
export function distFile(relative: string): string {
  const here = fileURLToPath(import.meta.url);
  if (here.endsWith('.ts')) return fileURLToPath(new URL(`../../dist/${relative}`, import.meta.url));
  return fileURLToPath(new URL(`../${relative}`, import.meta.url));
}
