import { isIP, connect as tcpConnect, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { redactRedisUrl } from '../../config/redis-url.js';

/**
 * A reply as this connection reads it (RESP2): a status as text, an integer, nil, a bulk string as its
 * bytes (a view into what the socket read when it came in one piece: no copy, no text decoding), or an
 * array of replies (XREAD's entries).
 */
export type RespReply = string | number | null | Buffer | RespReply[];

interface Sent {
  args: readonly (string | Uint8Array)[];
  resolve: (reply: RespReply) => void;
  reject: (err: Error) => void;
  /** AUTH or SELECT, sent again first after each connect; not the caller's. */
  handshake?: boolean;
}

const CONNECT_TIMEOUT_MS = 10_000;
/** How soon a command answered LOADING is sent again. */
const LOADING_RETRY_MS = 100;
/** Waits between reconnects: 50 ms more each try, at most 2 s (what ioredis does by default). */
const retryDelayMs = (tries: number) => Math.min(tries * 50, 2000);

/**
 * One connection to Redis for commands whose arguments or replies are large byte buffers: a worker's
 * result batches and the coordinator's reads of them (run-channel.ts). Why not ioredis for these:
 * ioredis copies a command's Buffer arguments into one new Buffer (or concatenates string ones into one
 * string, flattened on write), so each batch of results — up to 512 lines, hundreds of KB — was a fresh
 * allocation the size of the batch. Written as they are here (a head string, the caller's bytes, a
 * tail, in one writev), a one-shard worker spent 3.5% ± 0.7% less CPU a request than with ioredis (six
 * same-run A/B runs, `bench/worker-ab.mjs`; a prototype: −4.5% and −3.4% ± 0.9%), and ioredis given the
 * same bytes as a Buffer only −0.3% ± 0.9% (BENCHMARKS.md, "Results without ioredis"). Everything else
 * a worker or coordinator says to Redis still goes through ioredis and BullMQ.
 *
 * What it keeps of ioredis's behaviour: the URL's user, password and database (AUTH, SELECT);
 * rediss:// over TLS with the system's CAs; and a lost connection is tried again and again (50 ms more
 * each time, at most 2 s apart), the commands not yet answered sent again once it is back — a Redis
 * restart delays results, it does not lose them (a batch sent twice is kept once by the coordinator).
 * Replies are read in order; an error reply rejects its command. Bulk replies stay bytes: the
 * coordinator's XREAD of result batches, read through ioredis, was decoded into one string per batch
 * (hundreds of KB, in V8's large-object space until a full GC), split, and encoded again into
 * results.jsonl; as bytes, a result line goes from the socket's buffer to the file: the drain spent
 * 24.9% ± 3.2% less CPU a result (`bench/drain-ab.mjs`, BENCHMARKS.md, "Results as bytes to the file").
 */
export class RespConnection {
  private socket: Socket | undefined;
  /** Written (or to be written once connected) and not yet answered, in order. */
  private inFlight: Sent[] = [];
  private connected = false;
  private closed = false;
  private tries = 0;
  private retryTimer: NodeJS.Timeout | undefined;
  /** Whether the connection's loss was said (its return is said too). */
  private said = false;
  /** Whether this connection's Redis was said to be loading (once a connection). */
  private saidLoading = false;
  private readonly url: URL;
  /** The reply being read: arrays not yet full (innermost last), a bulk string coming in pieces. */
  private readonly arrays: { items: RespReply[]; left: number }[] = [];
  private bulk: { bytes: Buffer; filled: number } | undefined;
  /** Bytes still to skip (a bulk string's CRLF that came in the next read). */
  private skip = 0;
  /** The start of a line whose end has not come yet. */
  private carry: Buffer | undefined;

  constructor(
    url: string,
    private readonly log: (line: string) => void = (line) => process.stderr.write(`shardline: ${line}\n`),
  ) {
    this.url = new URL(url);
    this.open();
  }

  /** Send one command; resolves with its reply, rejects with Redis's error. Buffers must not change until then. */
  send(args: readonly (string | Uint8Array)[]): Promise<RespReply> {
    if (this.closed) return Promise.reject(new Error('the Redis connection for results is closed'));
    return new Promise((resolve, reject) => {
      const sent: Sent = { args, resolve, reject };
      this.inFlight.push(sent);
      if (this.connected) this.write([sent]);
    });
  }

  close(): void {
    this.closed = true;
    clearTimeout(this.retryTimer);
    for (const s of this.inFlight.splice(0)) s.reject(new Error('the Redis connection for results was closed'));
    this.socket?.end();
  }

  private open(): void {
    const port = Number(this.url.port || 6379);
    const host = this.url.hostname.replace(/^\[|\]$/g, '');
    const socket =
      this.url.protocol === 'rediss:'
        ? tlsConnect({ host, port, ...(isIP(host) ? {} : { servername: host }) }, () => this.onConnect())
        : tcpConnect({ host, port }, () => this.onConnect());
    socket.setNoDelay(true);
    // A host that drops packets would leave a connect hanging for minutes: 10 s, as ioredis waits.
    socket.setTimeout(CONNECT_TIMEOUT_MS, () => socket.destroy(new Error('connect timed out')));
    // A replaced socket's late events are not this connection's any more.
    const mine = () => this.socket === socket;
    socket.on('data', (chunk: Buffer) => mine() && this.onData(chunk));
    socket.on('error', (err: Error) => mine() && this.onLost(err.message));
    socket.on('close', () => mine() && this.onLost('connection closed'));
    this.socket = socket;
  }

  private onConnect(): void {
    this.socket?.setTimeout(0);
    this.connected = true;
    this.arrays.length = 0;
    this.bulk = undefined;
    this.skip = 0;
    this.carry = undefined;
    if (this.said) this.log(`Redis at ${redactRedisUrl(this.url.href)} is back: results flow again`);
    this.tries = 0;
    this.said = false;
    this.saidLoading = false;
    // The handshake goes first, then every command not answered before the connection was lost.
    const pending = this.inFlight.filter((s) => !s.handshake);
    this.inFlight = [...this.handshake(), ...pending];
    this.write(this.inFlight);
  }

  private handshake(): Sent[] {
    const out: Sent[] = [];
    const fail = (err: Error) => this.fatal(err);
    const user = decodeURIComponent(this.url.username);
    const password = decodeURIComponent(this.url.password);
    if (password) {
      const args = user ? ['AUTH', user, password] : ['AUTH', password];
      out.push({ args, resolve: () => {}, reject: fail, handshake: true });
    }
    const db = Number(this.url.pathname.slice(1) || 0);
    if (db) out.push({ args: ['SELECT', String(db)], resolve: () => {}, reject: fail, handshake: true });
    return out;
  }

  /** A refused AUTH or SELECT: every command fails with it (the next connect would be refused the same). */
  private fatal(err: Error): void {
    for (const s of this.inFlight.splice(0)) s.reject(err);
    this.close();
    this.log(`Redis at ${redactRedisUrl(this.url.href)} refused the results connection: ${err.message}`);
  }

  private write(commands: readonly Sent[]): void {
    const socket = this.socket!;
    socket.cork();
    for (const { args } of commands) {
      let head = `*${args.length}\r\n`;
      for (const a of args) {
        if (typeof a === 'string') {
          head += `$${Buffer.byteLength(a)}\r\n${a}\r\n`;
          continue;
        }
        socket.write(`${head}$${a.byteLength}\r\n`);
        socket.write(a);
        head = '\r\n';
      }
      socket.write(head);
    }
    socket.uncork();
  }

  private onData(chunk: Buffer): void {
    let data = chunk;
    if (this.carry) {
      data = Buffer.concat([this.carry, chunk]);
      this.carry = undefined;
    }
    let pos = 0;
    while (pos < data.length) {
      if (this.skip > 0) {
        const n = Math.min(this.skip, data.length - pos);
        this.skip -= n;
        pos += n;
        continue;
      }
      if (this.bulk) {
        const b = this.bulk;
        const n = Math.min(b.bytes.length - b.filled, data.length - pos);
        data.copy(b.bytes, b.filled, pos, pos + n);
        b.filled += n;
        pos += n;
        if (b.filled < b.bytes.length) return;
        this.bulk = undefined;
        this.skip = 2;
        this.deliver(b.bytes);
        continue;
      }
      const lf = data.indexOf(0x0a, pos);
      if (lf < 0) {
        // Copied: the rest of the read is not kept alive for a few bytes of a header.
        this.carry = Buffer.from(data.subarray(pos));
        return;
      }
      const kind = data[pos];
      const text = data.toString('utf8', pos + 1, lf - 1);
      pos = lf + 1;
      if (kind === 0x2b /* + */) this.deliver(text);
      else if (kind === 0x2d /* - */) this.deliver(new Error(`Redis: ${text}`));
      else if (kind === 0x3a /* : */) this.deliver(Number(text));
      else if (kind === 0x5f /* _ */) this.deliver(null);
      else if (kind === 0x24 /* $ */ || kind === 0x2a /* * */) {
        const n = Number(text);
        if (n < 0) this.deliver(null);
        else if (kind === 0x2a) {
          if (n === 0) this.deliver([]);
          else this.arrays.push({ items: [], left: n });
        } else if (data.length - pos >= n + 2) {
          // Whole in this read: a view of it, not a copy.
          this.deliver(data.subarray(pos, pos + n));
          pos += n + 2;
        } else this.bulk = { bytes: Buffer.allocUnsafe(n), filled: 0 };
      } else {
        // Not RESP2 as this connection speaks it: a bug, not Redis's.
        this.socket?.destroy(new Error(`unexpected reply from Redis: ${JSON.stringify(text.slice(0, 40))}`));
        return;
      }
    }
  }

  /** A value read: into the array it belongs to, or, once its reply is whole, to the command it answers. */
  private deliver(value: RespReply | Error): void {
    for (;;) {
      const top = this.arrays.at(-1);
      if (!top) break;
      // An error inside an array (EXEC's) is that element's value; nothing sent here gets one.
      top.items.push(value as RespReply);
      if (--top.left > 0) return;
      this.arrays.pop();
      value = top.items;
    }
    const sent = this.inFlight.shift();
    if (!sent) return;
    // A Redis restarted from its AOF answers LOADING until its data is in: the command waits, as with
    // ioredis (whose ready check holds commands back), instead of failing the run.
    if (value instanceof Error && value.message.startsWith('Redis: LOADING')) return this.sendLater(sent);
    if (value instanceof Error) sent.reject(value);
    else sent.resolve(value);
  }

  /** Send a command again in a moment (Redis still loading its data). */
  private sendLater(sent: Sent): void {
    // Its own flag: sharing the loss's made a later loss of the connection go unsaid.
    if (!this.saidLoading)
      this.log(`Redis at ${redactRedisUrl(this.url.href)} is loading its data; results wait for it`);
    this.saidLoading = true;
    setTimeout(() => {
      if (this.closed) return sent.reject(new Error('the Redis connection for results was closed'));
      this.inFlight.push(sent);
      if (this.connected) this.write([sent]);
    }, LOADING_RETRY_MS);
  }

  private onLost(why: string): void {
    if (!this.connected && this.retryTimer !== undefined) return; // 'close' after 'error': one retry
    this.connected = false;
    this.socket?.destroy();
    if (this.closed) return;
    if (!this.said) this.log(`Redis at ${redactRedisUrl(this.url.href)}: ${why}; results wait for it (reconnecting)`);
    this.said = true;
    this.tries++;
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      this.open();
    }, retryDelayMs(this.tries));
  }
}
