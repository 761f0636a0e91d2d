import { workerData } from 'node:worker_threads';

type Hook = (result: unknown) => unknown;
const { moduleUrl } = workerData as { moduleUrl: string };
let hook: Promise<Hook> | undefined;

/** Piscina task: apply the hook's default export to one result line, return the new line. */
export default async function postprocess(resultLine: string): Promise<string> {
  hook ??= import(moduleUrl).then((m: { default?: unknown }) => {
    if (typeof m.default !== 'function') throw new Error(`${moduleUrl} has no default export function`);
    return m.default as Hook;
  });
  const out = await (await hook)(JSON.parse(resultLine));
  if (out === null || typeof out !== 'object') throw new Error('the hook must return the result object');
  return JSON.stringify(out);
}
