import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { parseProfile, SimCore } from '../../src/index.js';

export interface SeenRequest {
  headers: Record<string, string | string[] | undefined>;
  body: Record<string, unknown>;
}

/**
 * The simulator is a plain request handler, so a test server can record every request (headers and
 * parsed body) and still answer it with the `fast` profile.
 */
export async function startObservingSim(): Promise<{ url: string; seen: SeenRequest[]; close: () => Promise<void> }> {
  const core = new SimCore({ profile: parseProfile({ base: 'fast' }) });
  const seen: SeenRequest[] = [];
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => seen.push({ headers: req.headers, body: JSON.parse(body) as Record<string, unknown> }));
    core.handle(req, res);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    seen,
    close: async () => {
      core.close();
      await new Promise((r) => server.close(r));
    },
  };
}
