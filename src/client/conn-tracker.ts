import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import type { Socket } from 'node:net';
import type { buildConnector as Connector } from 'undici';
import { buildConnector } from './undici-parts.js';
import type { Clock } from '../util/clock.js';

/** Whom the next request written to a socket belongs to. */
export interface ConnAttribution {
  id: string;
  attempt: number;
  /** Whether this request is streamed (remembered per socket, see `afterStream`). */
  stream: boolean;
  /** Set when the attempt's request went out on a socket opened for it. */
  connectMs?: number;
  /** Set when it went out on a socket an earlier request used (a keep-alive reuse). */
  reused?: boolean;
  /** With `reused`: whether that socket's previous request was streamed. */
  afterStream?: boolean;
}

interface SendHeadersMessage {
  socket: Socket;
}

/**
 * Counts sockets opened and open, timing each connect by wrapping undici's connector, and tells
 * which attempt used a fresh socket: undici calls a request's `onRequestStart` and then, synchronously
 * in the same function, publishes `undici:client:sendHeaders` with the socket, so the attempt marked
 * in `onRequestStart` is the one on that socket. One tracker per process (channels are global).
 */
export class ConnTracker {
  open = 0;
  opened = 0;
  private pending: ConnAttribution | undefined;
  private readonly connectMs = new WeakMap<Socket, number>();
  /** Each used connection (a socket, or a RawPool connection) and whether its last request was streamed. */
  private readonly lastStream = new WeakMap<object, boolean>();
  private readonly onSendHeaders = (message: unknown): void => {
    const socket = (message as SendHeadersMessage).socket;
    const ms = this.connectMs.get(socket);
    if (this.lastStream.has(socket)) this.attributeReused(socket);
    else if (ms !== undefined) this.attributeFresh(ms, socket);
    else this.pending = undefined;
  };

  constructor(
    private readonly clock: Clock,
    /** Called when an attempt goes out on a socket opened for it. */
    private readonly onNewConnection?: (connectMs: number, who: ConnAttribution) => void,
  ) {
    subscribe('undici:client:sendHeaders', this.onSendHeaders);
  }

  /** A connector for undici's `connect` option that times every connect. */
  connector(options: Connector.BuildOptions): Connector.connector {
    const base = buildConnector(options);
    return (opts, callback) => {
      const t0 = this.clock();
      base(opts, (err, socket) => {
        if (!err && socket) {
          this.connectMs.set(socket as Socket, this.clock() - t0);
          this.open++;
          this.opened++;
          socket.once('close', () => this.open--);
        }
        (callback as (e: Error | null, s: typeof socket) => void)(err, socket);
      });
    };
  }

  /** For transports that time their own connects (RawPool): a socket opened / closed. */
  noteOpen(): void {
    this.open++;
    this.opened++;
  }
  noteClose(): void {
    this.open--;
  }

  /** The marked attempt's request goes out on connection `conn`, opened for it (RawPool calls this itself). */
  attributeFresh(connectMs: number, conn: object): void {
    const attribution = this.pending;
    this.pending = undefined;
    this.lastStream.set(conn, attribution?.stream ?? false);
    if (!attribution) return;
    attribution.connectMs = connectMs;
    this.onNewConnection?.(connectMs, attribution);
  }

  /** The marked attempt's request goes out on connection `conn`, which an earlier request used. */
  attributeReused(conn: object): void {
    const attribution = this.pending;
    this.pending = undefined;
    if (!attribution) return;
    attribution.reused = true;
    attribution.afterStream = this.lastStream.get(conn) ?? false;
    this.lastStream.set(conn, attribution.stream);
  }

  /** Mark the attempt whose request undici is about to write (call from `onRequestStart`). */
  mark(who: ConnAttribution): void {
    this.pending = who;
  }

  close(): void {
    unsubscribe('undici:client:sendHeaders', this.onSendHeaders);
  }
}
