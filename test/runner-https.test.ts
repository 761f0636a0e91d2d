import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { completionText, parseProfile, run, SimCore } from '../src/index.js';
import { loadResults, tempDir, writeInput } from './helpers/run-dir.js';
import { selfSignedCert } from './helpers/tls.js';

let server: Server;
let core: SimCore;
let certFile: string;
let url: string;

beforeAll(async () => {
  const cert = selfSignedCert();
  certFile = cert.certFile;
  core = new SimCore({ profile: parseProfile({ base: 'fast' }) });
  server = createServer({ key: readFileSync(cert.keyFile), cert: readFileSync(certFile) }, core.handle);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  url = `https://127.0.0.1:${(server.address() as AddressInfo).port}/v1`;
});
afterAll(async () => {
  core.close();
  await new Promise((r) => server.close(r));
});

describe('https endpoints', () => {
  for (const transport of ['undici', 'raw'] as const) {
    it(`${transport}: trusts NODE_EXTRA_CA_CERTS, and refuses an unknown certificate with a clear cause`, async () => {
      const dir = tempDir();
      const before = process.env.NODE_EXTRA_CA_CERTS;
      try {
        delete process.env.NODE_EXTRA_CA_CERTS;
        const untrusted = await run({
          input: writeInput(dir, 2),
          endpoint: url,
          out: join(dir, 'a'),
          transport,
          maxAttempts: 1,
          progress: 'off',
        });
        expect(untrusted.failure_causes).toEqual({ conn_refused: 2 });
        // Shards are child processes and inherit the environment, as they would from the shell.
        process.env.NODE_EXTRA_CA_CERTS = certFile;
        const trusted = await run({
          input: writeInput(dir, 3, {}, 'b.jsonl'),
          endpoint: url,
          out: join(dir, 'b'),
          transport,
          progress: 'off',
        });
        expect(trusted.requests.succeeded).toBe(3);
        if (transport === 'raw') {
          // Read holds pause a TLS socket through its stream (no onread buffer there): nothing lost.
          const out = join(dir, 'c');
          const held = await run({
            input: writeInput(dir, 4, { max_tokens: 64 }, 'c.jsonl'),
            endpoint: url,
            out,
            transport,
            readCoalesceMs: 40,
            progress: 'off',
          });
          expect(held.requests.succeeded).toBe(4);
          for (const r of loadResults(out))
            expect(r.response!.body.choices[0]!.message.content).toBe(completionText(64));
        }
      } finally {
        if (before === undefined) delete process.env.NODE_EXTRA_CA_CERTS;
        else process.env.NODE_EXTRA_CA_CERTS = before;
      }
    });
  }
});
