import { ENDPOINT_PATHS, type EndpointKind } from '../../client/endpoints.js';
import type { ChatTarget } from '../../client/chat-attempt.js';
import { ConnTracker } from '../../client/conn-tracker.js';
import { RawPool, type ChatDispatcher } from '../../client/raw-pool.js';
import { trustedCas } from '../../client/trusted-cas.js';
import { Pool } from '../../client/undici-parts.js';
import type { Clock } from '../../util/clock.js';
import type { ShardConfig, WorkItem } from '../ipc-messages.js';

/**
 * A shard's way to its server: its keep-alive pool (undici's, or the raw one), the connection tracker
 * that attributes each connection's setup to the attempt that waited for it, the request targets by
 * endpoint path, and a pool of fresh connections for re-sends after a stale one.
 */
export class ShardTransport {
  readonly pool: Pool | RawPool;
  readonly tracker: ConnTracker;
  private readonly target: ChatTarget;
  /** `target` with Connection: close, for requests that must not leave a connection to reuse. */
  private readonly closeTarget: ChatTarget;
  /** Targets of non-chat endpoints, by path (and `close:` path). */
  private readonly targets = new Map<string, ChatTarget>();
  /** Where a re-send after a stale connection goes: always a connection opened for it. */
  private freshDispatcher: ChatDispatcher | undefined;
  private freshPool: Pool | undefined;

  constructor(
    private readonly config: ShardConfig,
    clock: Clock,
    onConnOpen: (connectMs: number, who: { id: string; attempt: number }) => void,
  ) {
    this.tracker = new ConnTracker(clock, onConnOpen);
    this.pool =
      config.transport === 'raw'
        ? new RawPool({
            origin: config.origin,
            connections: config.concurrency,
            connectTimeoutMs: config.timeoutConnectMs,
            onOpen: () => this.tracker.noteOpen(),
            onClose: () => this.tracker.noteClose(),
            onFreshRequest: (ms, conn) => this.tracker.attributeFresh(ms, conn),
            onReusedRequest: (conn) => this.tracker.attributeReused(conn),
          })
        : this.undiciPool();
    this.target = { origin: config.origin, path: config.path, headers: config.headers, keepAlive: config.keepAlive };
    this.closeTarget = { ...this.target, keepAlive: false };
  }

  private undiciPool(): Pool {
    const config = this.config;
    return new Pool(config.origin, {
      connections: config.concurrency,
      pipelining: 1,
      keepAliveTimeout: 30_000,
      headersTimeout: 0,
      bodyTimeout: 0,
      connect: this.tracker.connector({
        timeout: config.timeoutConnectMs,
        ...(config.origin.startsWith('https:') ? { ca: trustedCas() } : {}),
      }),
    });
  }

  /** Where `item` goes: its endpoint's path under the base URL; `close` asks for Connection: close. */
  targetFor(item: WorkItem, close: boolean): ChatTarget {
    if (!item.endpoint) return close ? this.closeTarget : this.target;
    const path = item.path ?? ENDPOINT_PATHS[item.endpoint as Exclude<EndpointKind, 'other'>];
    const key = close ? `close:${path}` : path;
    let t = this.targets.get(key);
    if (!t) {
      // Made once per path.
      const base = close ? this.closeTarget : this.target;
      t = { ...base, path: `${this.config.basePath}/${path}${this.config.search}` };
      this.targets.set(key, t);
    }
    return t;
  }

  /** The keep-alive pool, or (`fresh`) a dispatcher that opens a connection for each request. */
  dispatcher(fresh: boolean): ChatDispatcher {
    if (!fresh) return this.pool;
    if (!this.freshDispatcher) {
      const pool = this.pool;
      if (pool instanceof RawPool) this.freshDispatcher = { dispatch: (o, h) => pool.dispatchFresh(o, h) };
      // Its requests all ask for Connection: close, so each one opens its own connection.
      else this.freshDispatcher = this.freshPool = this.undiciPool();
    }
    return this.freshDispatcher;
  }

  /** Socket reads of the raw pool (its own figure); undefined on undici. */
  get socketReads(): number | undefined {
    return this.pool instanceof RawPool ? this.pool.reads : undefined;
  }

  /** Let requests in flight finish (`drain`) or drop them. */
  async close(drain: boolean): Promise<void> {
    this.tracker.close();
    if (drain) await Promise.all([this.pool.close(), this.freshPool?.close()]);
    else void Promise.all([this.pool.destroy(), this.freshPool?.destroy()]);
  }
}
