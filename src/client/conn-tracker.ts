import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import type { Socket } from 'node:net';
import { buildConnector } from 'undici';
import type { Clock } from '../events/clock.js';

/** Whom the next request written to a socket belongs to. */
export interface ConnAttribution {
  id: string;
  attempt: number;
  /** Set when the attempt's request went out on a socket opened for it. */
  connectMs?: number;
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
  private readonly used = new WeakSet<Socket>();
  private readonly onSendHeaders = (message: unknown): void => {
    const attribution = this.pending;
    this.pending = undefined;
    const socket = (message as SendHeadersMessage).socket;
    if (!attribution || this.used.has(socket)) return;
    this.used.add(socket);
    const ms = this.connectMs.get(socket);
    if (ms === undefined) return;
    attribution.connectMs = ms;
    this.onNewConnection?.(ms, attribution);
  };

  constructor(
    private readonly clock: Clock,
    /** Called when an attempt goes out on a socket opened for it. */
    private readonly onNewConnection?: (connectMs: number, who: ConnAttribution) => void,
  ) {
    subscribe('undici:client:sendHeaders', this.onSendHeaders);
  }

  /** A connector for undici's `connect` option that times every connect. */
  connector(options: buildConnector.BuildOptions): buildConnector.connector {
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

  /** For RawPool: the marked attempt's request goes out on a socket opened for it. */
  attributeFresh(connectMs: number): void {
    const attribution = this.pending;
    this.pending = undefined;
    if (!attribution) return;
    attribution.connectMs = connectMs;
    this.onNewConnection?.(connectMs, attribution);
  }

  /** Mark the attempt whose request undici is about to write (call from `onRequestStart`). */
  mark(who: ConnAttribution): void {
    this.pending = who;
  }

  close(): void {
    unsubscribe('undici:client:sendHeaders', this.onSendHeaders);
  }
}
