import { isIP, connect as tcpConnect, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { redactRedisUrl } from '../../config/redis-url.js';

/** A reply this connection reads: the kinds a script or a write command answers with (RESP2). */
export type RespReply = string | number | null;

interface Sent {
  args: readonly (string | Uint8Array)[];
  resolve: (reply: RespReply) => void;
  reject: (err: Error) => void;
  /** AUTH or SELECT, sent again first after each connect; not the caller's. */
  handshake?: boolean;
}

const CONNECT_TIMEOUT_MS = 10_000;
/** Waits between reconnects: 50 ms more each try, at most 2 s (what ioredis does by default). */
const retryDelayMs = (tries: number) => Math.min(tries * 50, 2000);

/**
 * One connection to Redis for commands whose arguments are large byte buffers: a worker's result
 * batches (run-channel.ts). Why not ioredis for these: ioredis copies a command's Buffer arguments into
 * one new Buffer (or concatenates string ones into one string, flattened on write), so each batch of
 * results — up to 512 lines, hundreds of KB — was a fresh allocation the size of the batch. Written as
 * they are here (a head string, the caller's bytes, a tail, in one writev), a one-shard worker spent
 * 3.5% ± 0.7% less CPU a request than with ioredis (six same-run A/B runs, `bench/worker-ab.mjs`; a
 * prototype: −4.5% and −3.4% ± 0.9%), and ioredis given the same bytes as a Buffer only −0.3% ± 0.9%
 * (BENCHMARKS.md, "Results without ioredis"). Everything else a worker says to Redis still goes through
 * ioredis and BullMQ.
 *
 * What it keeps of ioredis's behaviour: the URL's user, password and database (AUTH, SELECT);
 * rediss:// over TLS with the system's CAs; and a lost connection is tried again and again (50 ms more
 * each time, at most 2 s apart), the commands not yet answered sent again once it is back — a Redis
 * restart delays results, it does not lose them (a batch sent twice is kept once by the coordinator).
 * Replies are read in order; an error reply rejects its command.
 */
export class RespConnection {
  private socket: Socket | undefined;
  /** Written (or to be written once connected) and not yet answered, in order. */
  private inFlight: Sent[] = [];
  private connected = false;
  private closed = false;
  private tries = 0;
  private retryTimer: NodeJS.Timeout | undefined;
  private said = false;
  private input = '';
  private readonly url: URL;

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
    this.input = '';
    if (this.said) this.log(`Redis at ${redactRedisUrl(this.url.href)} is back: results flow again`);
    this.tries = 0;
    this.said = false;
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
    this.log(`Redis at ${redactRedisUrl(this.url.href)} refused this worker's results connection: ${err.message}`);
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
    // Replies here are a few bytes each (a stream id, OK, nil): text is simplest to cut.
    this.input += chunk.toString('latin1');
    for (;;) {
      const reply = this.readReply();
      if (reply === undefined) return;
      const sent = this.inFlight.shift();
      if (!sent) return;
      if (reply instanceof Error) sent.reject(reply);
      else sent.resolve(reply);
    }
  }

  /** One whole reply off the front of the input, or undefined until it has come in full. */
  private readReply(): RespReply | Error | undefined {
    const end = this.input.indexOf('\r\n');
    if (end < 0) return undefined;
    const kind = this.input[0];
    const text = this.input.slice(1, end);
    let used = end + 2;
    let reply: RespReply | Error;
    if (kind === '+') reply = text;
    else if (kind === '-') reply = new Error(`Redis: ${text}`);
    else if (kind === ':') reply = Number(text);
    else if (kind === '_') reply = null;
    else if (kind === '$') {
      const n = Number(text);
      if (n < 0) reply = null;
      else {
        if (this.input.length < used + n + 2) return undefined;
        reply = Buffer.from(this.input.slice(used, used + n), 'latin1').toString();
        used += n + 2;
      }
    } else {
      // Nothing this connection sends is answered with an array or anything else: a bug, not Redis's.
      this.socket?.destroy(new Error(`unexpected reply from Redis: ${JSON.stringify(this.input.slice(0, 40))}`));
      return undefined;
    }
    this.input = this.input.slice(used);
    return reply;
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
