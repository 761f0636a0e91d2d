import { isIP, connect as netConnect, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import type { Dispatcher } from 'undici';
import { abortedController, RawConnection, TransportError, type ConnectionOwner } from './raw-connection.js';
import { trustedCas } from './trusted-cas.js';

/** The part of undici's Dispatcher that runChatAttempt uses; undici's Pool and RawPool both have it. */
export interface ChatDispatcher {
  dispatch(options: Dispatcher.DispatchOptions, handler: Dispatcher.DispatchHandler): boolean;
}

export interface RawPoolOptions {
  origin: string;
  /** Most connections open at once. */
  connections: number;
  connectTimeoutMs: number;
  /** A new socket connected after `connectMs`. */
  onOpen?: (connectMs: number) => void;
  onClose?: () => void;
  /** The request about to be written is the first on its connection (called right after onRequestStart). */
  onFreshRequest?: (connectMs: number, conn: object) => void;
  /** The request about to be written goes out on a connection an earlier request used. */
  onReusedRequest?: (conn: object) => void;
  now?: () => number;
}

/**
 * A minimal HTTP/1.1 client for streaming responses at high concurrency: keep-alive connections
 * whose plain-TCP sockets read into one static buffer (`net.connect({ onread })`), skipping the
 * Readable stream and a Buffer allocation per read. Why: with one SSE chunk per socket read (512
 * streams, a token every 10 ms), undici costs 6.9 µs user CPU per read on the project machine and
 * this path 2.3 µs (BENCHMARKS.md, "Runner vs the openai client"). It speaks only what the runner
 * needs — one request at a time per connection, Content-Length request bodies, chunked,
 * Content-Length or close-delimited responses — and undici stays the default transport.
 * A connection the server sends unasked-for bytes on is closed, never reused. Unlike undici it
 * writes a request on a reused connection at once rather than a loop turn later, so stray bytes
 * still in flight at that moment would be read as the response (GHSA-35p6-xmwp-9g52 is undici's
 * defence): meant for the runner's own endpoints, not for untrusted servers.
 */
export class RawPool implements ChatDispatcher, ConnectionOwner {
  private readonly url: URL;
  private readonly idle: RawConnection[] = [];
  private readonly waiting: ((c: RawConnection | Error) => void)[] = [];
  private open = 0;
  private closed = false;
  /** Socket reads so far (each a read callback), for CPU-per-read accounting. */
  reads = 0;
  readonly now: () => number;

  constructor(readonly options: RawPoolOptions) {
    this.url = new URL(options.origin);
    this.now = options.now ?? (() => performance.now());
  }

  dispatch(opts: Dispatcher.DispatchOptions, handler: Dispatcher.DispatchHandler): boolean {
    const start = (c: RawConnection | Error) => {
      if (c instanceof Error) {
        handler.onResponseError?.(abortedController(), c);
        return;
      }
      c.run(opts, handler);
    };
    const conn = this.idle.pop();
    if (conn) start(conn);
    else if (this.open < this.options.connections) {
      this.open++;
      this.connect().then(start, (err: Error) => {
        this.open--;
        start(err);
      });
    } else this.waiting.push(start);
    return true;
  }

  /**
   * Send on a connection opened for this request, never a reused one: the re-send after a stale
   * keep-alive connection. It may take the pool one over its size until a connection closes.
   */
  dispatchFresh(opts: Dispatcher.DispatchOptions, handler: Dispatcher.DispatchHandler): boolean {
    this.open++;
    this.connect().then(
      (c) => c.run(opts, handler),
      (err: Error) => {
        this.open--;
        handler.onResponseError?.(abortedController(), err);
      },
    );
    return true;
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const c of this.idle.splice(0)) c.destroy();
  }

  async destroy(): Promise<void> {
    await this.close();
  }

  /** A connection finished a response and may be reused. */
  release(conn: RawConnection): void {
    if (this.closed) return conn.destroy();
    const next = this.waiting.shift();
    if (next) next(conn);
    else this.idle.push(conn);
  }

  /** A connection closed (for any reason). */
  forget(conn: RawConnection): void {
    const i = this.idle.indexOf(conn);
    if (i >= 0) this.idle.splice(i, 1);
    this.open--;
    this.options.onClose?.();
    // A slot freed: a waiting request may open a new connection.
    const next = this.waiting.shift();
    if (next) {
      this.open++;
      this.connect().then(next, (err: Error) => {
        this.open--;
        next(err);
      });
    }
  }

  private connect(): Promise<RawConnection> {
    const t0 = this.now();
    const https = this.url.protocol === 'https:';
    const port = Number(this.url.port || (https ? 443 : 80));
    const host = this.url.hostname.replace(/^\[|\]$/g, '');
    return new Promise((resolve, reject) => {
      const conn = new RawConnection(this, `${this.url.host}`);
      let socket: Socket;
      const timer = setTimeout(() => {
        socket.destroy(
          new TransportError(`connect timeout after ${this.options.connectTimeoutMs} ms`, 'UND_ERR_CONNECT_TIMEOUT'),
        );
      }, this.options.connectTimeoutMs);
      const onConnected = () => {
        clearTimeout(timer);
        socket.off('error', onError);
        socket.setNoDelay(true);
        const ms = this.now() - t0;
        conn.attach(socket, ms);
        this.options.onOpen?.(ms);
        resolve(conn);
      };
      const onError = (err: Error) => {
        clearTimeout(timer);
        reject(err);
      };
      if (https) {
        socket = tlsConnect(
          { host, port, servername: isIP(host) ? undefined : host, ALPNProtocols: ['http/1.1'], ca: trustedCas() },
          onConnected,
        );
        socket.on('data', (chunk: Buffer) => {
          if (!conn.onBytes(chunk, chunk.length)) socket.pause();
        });
      } else {
        const buffer = Buffer.allocUnsafe(64 * 1024);
        socket = netConnect(
          { host, port, onread: { buffer, callback: (n: number, buf: Uint8Array) => conn.onBytes(buf as Buffer, n) } },
          onConnected,
        );
      }
      socket.once('error', onError);
    });
  }
}
