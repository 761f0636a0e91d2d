import { createServer, type Server } from 'node:http';
import type { Socket } from 'node:net';
import { SimCore, type SimStats } from './sim-core.js';
import type { RequestTiming } from './sim-metrics.js';
import type { SimProfile } from './profile-schema.js';

/** Options of `startSim`. */
export interface StartSimOptions {
  profile: SimProfile;
  /** @default '127.0.0.1' */
  host?: string;
  /** 0 picks a free port. @default 0 */
  port?: number;
  /** @default 1 */
  seed?: number;
  /** Monotonic clock in ms; pass one in to test time-dependent faults. @default performance.now */
  now?: () => number;
}

/** A running simulator. */
export interface RunningSim {
  /** Base URL, e.g. `http://127.0.0.1:8000` (append `/v1` for an OpenAI client's baseURL). */
  url: string;
  port: number;
  core: SimCore;
  stats(): SimStats;
  requestTimings(): RequestTiming[];
  /**
   * A crash and restart: drop every connection, refuse new ones for `downMs`, then listen on the
   * same port again, answering 503 "Loading model" for `loadingMs`. Resolves once it is back.
   */
  outage(downMs: number, loadingMs?: number): Promise<void>;
  /** Stop accepting, drop open connections and stop the step loop. */
  close(): Promise<void>;
}

/**
 * Start the simulator on a loopback port.
 * @example const sim = await startSim({ profile: builtinProfiles.get('fast')! }); // sim.url + '/v1'
 */
export async function startSim(options: StartSimOptions): Promise<RunningSim> {
  const core = new SimCore({
    profile: options.profile,
    seed: options.seed ?? 1,
    ...(options.now ? { now: options.now } : {}),
  });
  const sockets = new Set<Socket>();
  const server: Server = createServer({ keepAliveTimeout: 65_000, requestTimeout: 0 }, core.handle);
  server.on('connection', (socket: Socket) => {
    sockets.add(socket);
    socket.setNoDelay(true);
    socket.on('close', () => sockets.delete(socket));
    core.onConnection(socket);
  });
  const host = options.host ?? '127.0.0.1';
  const listen = (port: number) =>
    new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => {
        server.off('error', reject);
        resolve();
      });
    });
  await listen(options.port ?? 0);
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  const urlHost = host.includes(':') ? `[${host}]` : host;
  let closed = false;
  let outageTimer: NodeJS.Timeout | undefined;
  const outage = async (downMs: number, loadingMs = 0): Promise<void> => {
    await new Promise<void>((resolve) => {
      server.close(() => resolve());
      for (const s of sockets) s.destroy();
    });
    await new Promise((r) => setTimeout(r, downMs));
    if (closed) return;
    core.setLoading(loadingMs);
    await listen(port);
  };
  const planned = options.profile.faults.outage;
  if (planned.at_s > 0) {
    outageTimer = setTimeout(() => void outage(planned.down_s * 1000, planned.loading_s * 1000), planned.at_s * 1000);
  }
  return {
    url: `http://${urlHost}:${port}`,
    port,
    core,
    stats: () => core.stats(),
    requestTimings: () => core.requestTimings(),
    outage,
    close: () =>
      new Promise<void>((resolve) => {
        closed = true;
        clearTimeout(outageTimer);
        core.close();
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}
