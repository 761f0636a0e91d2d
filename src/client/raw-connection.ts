import type { Socket } from 'node:net';
import type { Dispatcher } from 'undici';

/** A transport failure with undici's error code, so error causes map the same on both transports. */
export class TransportError extends Error {
  constructor(
    message: string,
    readonly code: string,
  ) {
    super(message);
  }
}

/** The most a response head may take (status line and headers); a longer one fails the attempt. */
const MAX_HEAD_BYTES = 64 * 1024;

const enum State {
  Idle,
  Head,
  ChunkSize,
  ChunkData,
  ChunkCrlf,
  Trailers,
  Length,
  UntilClose,
}

/**
 * What a connection needs of the pool that owns it (RawPool), declared here so the two files do not import each other.
 */
export interface ConnectionOwner {
  readonly options: {
    onFreshRequest?: (connectMs: number, conn: object) => void;
    onReusedRequest?: (conn: object) => void;
  };
  /** Socket reads so far, counted by each connection. */
  reads: number;
  /** The connection finished a response and can take the next request. */
  release(conn: RawConnection): void;
  /** The connection is closed: drop it. */
  forget(conn: RawConnection): void;
}

/** One keep-alive connection running one request at a time. */
export class RawConnection {
  private socket: Socket | undefined;
  private connectMs = 0;
  private used = false;
  private state = State.Idle;
  private handler: Dispatcher.DispatchHandler | undefined;
  private controller: Dispatcher.DispatchController = abortedController();
  private head = '';
  private remaining = 0;
  // Chunk-size line state (see onBytes).
  private chunkSize = 0;
  private sizeDigits = 0;
  private sizeDone = false;
  private crlfSeen = 0;
  /** Bytes of the head's closing CRLFCRLF matched so far. */
  private headMatch = 0;
  /** Bytes on the current trailer line (0 at a line's start). */
  private trailerLine = 0;
  private keepAlive = true;
  private finished = false;
  /** In onBytes (a response completed there is released once the read is through). */
  private reading = false;
  private releaseWhenRead = false;
  /** The handler asked to pause reading (the controller's pause()); see onBytes' return value. */
  private holdReads = false;

  constructor(
    private readonly pool: ConnectionOwner,
    private readonly hostHeader: string,
  ) {}

  attach(socket: Socket, connectMs: number): void {
    this.socket = socket;
    this.connectMs = connectMs;
    socket.on('error', (err) => this.fail(err));
    socket.on('end', () => this.onEnd());
    socket.on('close', () => {
      this.fail(new TransportError('other side closed', 'UND_ERR_SOCKET'));
      this.pool.forget(this);
    });
  }

  destroy(): void {
    this.socket?.destroy();
  }

  run(opts: Dispatcher.DispatchOptions, handler: Dispatcher.DispatchHandler): void {
    this.handler = handler;
    this.finished = false;
    this.state = State.Head;
    this.head = '';
    this.headMatch = 0;
    const controller = {
      aborted: false,
      paused: false,
      reason: null as Error | null,
      abort: (err: Error) => {
        if (controller.aborted) return;
        controller.aborted = true;
        controller.reason = err;
        this.fail(err);
        this.socket?.destroy();
      },
      pause: () => {
        if (this.controller === controller) this.holdReads = true;
      },
      resume: () => {
        if (this.controller !== controller || !this.holdReads) return;
        this.holdReads = false;
        this.socket?.resume();
      },
    };
    this.controller = controller;
    handler.onRequestStart?.(this.controller, {});
    if (this.finished) return;
    if (!this.used) {
      this.used = true;
      this.pool.options.onFreshRequest?.(this.connectMs, this);
    } else this.pool.options.onReusedRequest?.(this);
    this.keepAlive = !opts.reset;
    const body = typeof opts.body === 'string' ? opts.body : '';
    let text = `${opts.method} ${opts.path} HTTP/1.1\r\nhost: ${this.hostHeader}\r\n`;
    const headers = (opts.headers ?? {}) as Record<string, string>;
    for (const name in headers) text += `${name}: ${headers[name]}\r\n`;
    text +=
      `content-length: ${Buffer.byteLength(body)}\r\nconnection: ` +
      `${this.keepAlive ? 'keep-alive' : 'close'}\r\n\r\n${body}`;
    this.socket!.write(text);
  }

  /**
   * Bytes read from the socket; `buf` may be a reused static buffer valid only during this call.
   * Returns false when the handler paused reading (the socket stops reading until resume()).
   */
  onBytes(buf: Buffer, n: number): boolean {
    this.pool.reads++;
    // Bytes on a connection with no request out were never asked for: a server or proxy out of
    // step. Close it rather than let them be read as the next request's response.
    if (!this.handler) {
      if (n > 0) this.socket?.destroy();
      return true;
    }
    this.reading = true;
    let i = 0;
    while (i < n && this.handler) {
      switch (this.state) {
        case State.Head: {
          // Headers are small: gather them as latin1 text until the blank line, matching CRLFCRLF
          // byte by byte so a terminator split across reads is found (an indexOf per read missed
          // "\r\n\r" | "\n…" and swallowed the body into the head).
          let stop = n;
          for (let j = i; j < n; j++) {
            const b = buf[j]!;
            if (b === (this.headMatch & 1 ? 10 : 13)) this.headMatch++;
            else this.headMatch = b === 13 ? 1 : 0;
            if (this.headMatch === 4) {
              stop = j + 1;
              break;
            }
          }
          this.head += buf.toString('latin1', i, stop);
          i = stop;
          if (this.headMatch === 4) {
            this.headMatch = 0;
            this.onHead();
          } else if (this.head.length > MAX_HEAD_BYTES) {
            // A head that never ends would grow until a timeout; undici stops at 16 KiB.
            return this.failRead(
              new TransportError(`response head over ${MAX_HEAD_BYTES} bytes`, 'UND_ERR_HEADERS_OVERFLOW'),
            );
          }
          break;
        }
        case State.ChunkSize: {
          // Parsed from the bytes (no string per chunk): hex digits, then an optional extension
          // (`;name=value`) or whitespace up to the line's end.
          for (; i < n; i++) {
            const b = buf[i]!;
            if (b === 10) break;
            if (this.sizeDone) continue;
            const d = hexValue(b);
            if (d >= 0 && this.sizeDigits < 12) {
              this.chunkSize = this.chunkSize * 16 + d;
              this.sizeDigits++;
            } else if (b === 13 || b === 59 || b === 32 || b === 9) {
              if (this.sizeDigits > 0) this.sizeDone = true;
            } else {
              return this.failRead(new TransportError('invalid chunk size', 'UND_ERR_RESPONSE'));
            }
          }
          if (i === n) break;
          i++; // the line feed
          if (this.sizeDigits === 0) return this.failRead(new TransportError('invalid chunk size', 'UND_ERR_RESPONSE'));
          const size = this.chunkSize;
          this.resetChunkSize();
          if (size === 0) {
            this.state = State.Trailers;
            this.trailerLine = 0;
          } else {
            this.remaining = size;
            this.state = State.ChunkData;
          }
          break;
        }
        case State.ChunkData:
        case State.Length: {
          const take = Math.min(this.remaining, n - i);
          this.data(buf.subarray(i, i + take));
          i += take;
          this.remaining -= take;
          if (this.remaining === 0) {
            if (this.state === State.Length) this.complete();
            else {
              this.state = State.ChunkCrlf;
              this.crlfSeen = 0;
            }
          }
          break;
        }
        case State.ChunkCrlf: {
          // The CRLF after a chunk's data, possibly split across reads.
          const want = this.crlfSeen === 0 ? 13 : 10;
          if (buf[i] !== want) return this.failRead(new TransportError('invalid chunk framing', 'UND_ERR_RESPONSE'));
          i++;
          if (++this.crlfSeen === 2) this.state = State.ChunkSize;
          break;
        }
        case State.Trailers: {
          // Trailer lines (ignored) up to an empty line; bytes after it are not this response's.
          for (; i < n; i++) {
            const b = buf[i]!;
            if (b === 10) {
              if (this.trailerLine === 0) {
                i++;
                this.complete();
                break;
              }
              this.trailerLine = 0;
            } else if (b !== 13) this.trailerLine++;
          }
          break;
        }
        case State.UntilClose:
          this.data(buf.subarray(i, n));
          i = n;
          break;
        case State.Idle:
          i = n;
          break;
      }
    }
    this.reading = false;
    if (this.releaseWhenRead) {
      this.releaseWhenRead = false;
      // More bytes than the response: the same as bytes on an idle connection.
      if (i < n) this.socket?.destroy();
      else this.pool.release(this);
    }
    return !this.holdReads;
  }

  private onHead(): void {
    const lines = this.head.split('\r\n');
    const status = Number(lines[0]!.split(' ')[1]);
    const headers: Record<string, string> = {};
    for (let k = 1; k < lines.length; k++) {
      const line = lines[k]!;
      const c = line.indexOf(':');
      if (c > 0) headers[line.slice(0, c).trim().toLowerCase()] = line.slice(c + 1).trim();
    }
    if (!Number.isInteger(status)) return this.fail(new TransportError('invalid status line', 'UND_ERR_RESPONSE'));
    // An interim answer (100 Continue, 103 Early Hints) comes before the real one: read on for it.
    if (status >= 100 && status < 200 && status !== 101) {
      this.head = '';
      return;
    }
    if (headers.connection?.toLowerCase() === 'close') this.keepAlive = false;
    this.handler!.onResponseStart?.(this.controller, status, headers, '');
    if (!this.handler) return;
    // No body by definition, whatever the headers say (RFC 9112 §6.3).
    if (status === 204 || status === 304) this.complete();
    else if (headers['transfer-encoding']?.toLowerCase().includes('chunked')) {
      this.state = State.ChunkSize;
      this.resetChunkSize();
    } else if (headers['content-length'] !== undefined) {
      // Digits only: `Number()` would take '', ' 1e3' or '0x10', and NaN would stall the read loop.
      const length = headers['content-length'];
      if (!/^\d{1,15}$/.test(length))
        return this.fail(new TransportError(`invalid content-length: ${length.slice(0, 40)}`, 'UND_ERR_RESPONSE'));
      this.remaining = Number(length);
      this.state = State.Length;
      if (this.remaining === 0) this.complete();
    } else {
      this.state = State.UntilClose;
      this.keepAlive = false;
    }
  }

  private resetChunkSize(): void {
    this.chunkSize = 0;
    this.sizeDigits = 0;
    this.sizeDone = false;
  }

  private data(chunk: Buffer): void {
    if (chunk.length > 0) this.handler?.onResponseData?.(this.controller, chunk);
  }

  private onEnd(): void {
    if (this.state === State.UntilClose && this.handler) this.complete();
  }

  private failRead(err: Error): boolean {
    this.reading = false;
    this.fail(err);
    return true;
  }

  private complete(): void {
    const handler = this.handler;
    this.handler = undefined;
    // A response ends at this read: the connection reads on (for its next response or a FIN).
    this.holdReads = false;
    this.state = State.Idle;
    this.finished = true;
    handler?.onResponseEnd?.(this.controller, {});
    if (!this.keepAlive || !this.socket || this.socket.destroyed) this.socket?.destroy();
    // Inside a read, the rest of the read decides whether the connection can be reused.
    else if (this.reading) this.releaseWhenRead = true;
    else this.pool.release(this);
  }

  private fail(err: Error): void {
    const handler = this.handler;
    if (!handler) return;
    this.handler = undefined;
    this.state = State.Idle;
    this.finished = true;
    handler.onResponseError?.(this.controller, err);
    this.socket?.destroy();
  }
}

/** The value of an ASCII hex digit, or -1. */
function hexValue(b: number): number {
  if (b >= 48 && b <= 57) return b - 48;
  if (b >= 97 && b <= 102) return b - 87;
  if (b >= 65 && b <= 70) return b - 55;
  return -1;
}

/** A controller for a request that never started (its connection could not be had). */
export function abortedController(): Dispatcher.DispatchController {
  return { aborted: false, paused: false, reason: null, abort() {}, pause() {}, resume() {} };
}
