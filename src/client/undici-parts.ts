import { createRequire } from 'node:module';
import type * as Undici from 'undici';

/**
 * The two parts of undici a shard uses, loaded from their own modules rather than the package's
 * index. Why: the index loads all of undici (fetch, WebSocket, caches, mocks, ~110 modules) and costs
 * every shard process 133 ms of CPU at start, against 47 ms for these; a shard of a 10,000-request
 * embeddings job spent a tenth of its CPU starting up (BENCHMARKS.md, "Embeddings"). undici's
 * version is pinned exactly, and test/transport-conformance.test.ts runs every transport case through
 * this Pool, so a move of these files in an upgrade fails the tests, not a user's run.
 */
const require = createRequire(import.meta.url);

export const Pool = require('undici/lib/dispatcher/pool.js') as typeof Undici.Pool;
export type Pool = Undici.Pool;
export const buildConnector = require('undici/lib/core/connect.js') as typeof Undici.buildConnector;
