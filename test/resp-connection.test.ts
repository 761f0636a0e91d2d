import { readFileSync } from 'node:fs';
import { createServer, type AddressInfo, type Socket } from 'node:net';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseProfile, startSim, type RunningSim } from '../src/index.js';
import { RespConnection } from '../src/runner/distributed/resp-connection.js';
import { ResultBatch } from '../src/runner/distributed/result-batch.js';
import { runCli } from './helpers/cli.js';
import { until } from './helpers/processes.js';
import { startRedis, type TestRedis } from './helpers/redis.js';
import { filesUnder, loadResults, tempDir, writeInput } from './helpers/run-dir.js';
import { selfSignedCert } from './helpers/tls.js';

// The connection a worker sends its result batches on (its own RESP writer, not ioredis: see
// resp-connection.ts), against a real redis-server: replies of each kind, bytes sent as they are, a
// Redis restarted under it, a password and a database, and a whole distributed run over TLS.

let redis: TestRedis;
let reader: Redis;
beforeAll(async () => {
  redis = await startRedis();
  reader = new Redis(redis.url);
}, 30_000);
afterAll(async () => {
  reader.disconnect();
  await redis.stop();
});

function logged(): { lines: string[]; log: (line: string) => void } {
  const lines: string[] = [];
  return { lines, log: (line) => lines.push(line) };
}

describe('RespConnection', () => {
  it('reads each kind of reply in order, and an error reply rejects only its command', async () => {
    const c = new RespConnection(redis.url, logged().log);
    try {
      const replies = await Promise.all([
        c.send(['SET', 'k1', '41']),
        c.send(['INCR', 'k1']),
        c.send(['GET', 'k1']),
        c.send(['GET', 'no-such-key']),
        c.send(['SET', 'k2', 'é ü 漢']),
        c.send(['GET', 'k2']),
      ]);
      // Bulk strings stay bytes; statuses are text.
      expect(replies).toEqual(['OK', 42, Buffer.from('42'), null, 'OK', Buffer.from('é ü 漢')]);
      await expect(c.send(['INCR', 'k2'])).rejects.toThrow(/^Redis: ERR value is not an integer/);
      expect(await c.send(['EXISTS', 'k2'])).toBe(1);
    } finally {
      c.close();
    }
  });

  it('reads arrays, nested and empty, and nil for a read that timed out', async () => {
    const c = new RespConnection(redis.url, logged().log);
    try {
      const nested = await c.send(['EVAL', "return {1, {2, 'x', {}}, redis.status_reply('FINE'), 'end'}", '0']);
      expect(nested).toEqual([1, [2, Buffer.from('x'), []], 'FINE', Buffer.from('end')]);
      await c.send(['XADD', 'arr-stream', '1-1', 'f', 'v1']);
      await c.send(['XADD', 'arr-stream', '1-2', 'f', 'v2', 'g', '']);
      expect(await c.send(['XREAD', 'STREAMS', 'arr-stream', '0'])).toEqual([
        [
          Buffer.from('arr-stream'),
          [
            [Buffer.from('1-1'), [Buffer.from('f'), Buffer.from('v1')]],
            [Buffer.from('1-2'), [Buffer.from('f'), Buffer.from('v2'), Buffer.from('g'), Buffer.from('')]],
          ],
        ],
      ]);
      expect(await c.send(['XREAD', 'BLOCK', '20', 'STREAMS', 'arr-stream', '$'])).toBeNull();
    } finally {
      c.close();
    }
  });

  it('reads a reply of many MB that comes in many reads, bytes exact', async () => {
    const { lines, log } = logged();
    const c = new RespConnection(redis.url, log);
    try {
      // Multi-byte characters across every read boundary, and CR LF inside the value.
      const big = Buffer.from('é漢\r\n'.repeat(400_000));
      await c.send(['SET', 'big', big]);
      const [got, after] = await Promise.all([c.send(['GET', 'big']), c.send(['PING'])]);
      expect(Buffer.compare(got as Buffer, big)).toBe(0);
      expect(after).toBe('PONG');
      // Read in one go: a reply misread would have dropped the connection and sent both again.
      expect(lines).toEqual([]);
    } finally {
      c.close();
    }
  }, 30_000);

  it('reads replies cut anywhere: a server that answers one byte at a time', async () => {
    // Not Redis: a loopback server whose every reply arrives byte by byte, so each header, each
    // bulk string and each CR LF is split across reads.
    const reply = Buffer.from('*3\r\n$5\r\nab\r\nc\r\n*2\r\n:-7\r\n$-1\r\n+OK\r\n-ERR nope\r\n');
    const server = createServer((socket) => {
      socket.setNoDelay(true);
      socket.once('data', async () => {
        for (const byte of reply) {
          socket.write(Buffer.from([byte]));
          await new Promise((r) => setImmediate(r));
        }
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const c = new RespConnection(`redis://127.0.0.1:${(server.address() as AddressInfo).port}`, logged().log);
    try {
      const first = c.send(['ANYTHING']);
      const second = c.send(['ELSE']);
      expect(await first).toEqual([Buffer.from('ab\r\nc'), [-7, null], 'OK']);
      await expect(second).rejects.toThrow('Redis: ERR nope');
    } finally {
      c.close();
      server.close();
    }
  }, 10_000);

  it('sends a command again while Redis is loading its data, and says so once', async () => {
    // Not Redis: a loopback server that answers LOADING twice, then OK, as a Redis restarted from its
    // AOF does until its data is in; then it drops the connection, which is said too.
    let asked = 0;
    const sockets: Socket[] = [];
    const server = createServer((socket) => {
      sockets.push(socket);
      socket.on('data', () => {
        asked++;
        socket.write(asked <= 2 ? '-LOADING Redis is loading the dataset in memory\r\n' : '+OK\r\n');
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const { lines, log } = logged();
    const c = new RespConnection(`redis://127.0.0.1:${(server.address() as AddressInfo).port}`, log);
    try {
      expect(await c.send(['SET', 'k', 'v'])).toBe('OK');
      expect(asked).toBe(3);
      expect(lines).toHaveLength(1);
      expect(lines[0]).toMatch(/is loading its data; results wait for it/);
      for (const s of sockets) s.destroy();
      await until(() => lines.length > 1, 5_000, 'the lost connection said');
      expect(lines[1]).toMatch(/results wait for it \(reconnecting\)/);
    } finally {
      c.close();
      server.close();
    }
  }, 10_000);

  it('sends byte arguments as they are, CR and LF and invalid UTF-8 included', async () => {
    const c = new RespConnection(redis.url, logged().log);
    try {
      const bytes = Buffer.from([0x7b, 0x0d, 0x0a, 0xff, 0x00, 0x24, 0x2a, 0x0d, 0x0a, 0x7d]);
      // A view into a larger buffer: only its own bytes go.
      const big = Buffer.concat([Buffer.from('xx'), bytes, Buffer.from('yy')]);
      await c.send(['SET', 'bin', big.subarray(2, 2 + bytes.length)]);
      expect(await reader.getBuffer('bin')).toEqual(bytes);
    } finally {
      c.close();
    }
  });

  it('waits out a Redis restart: a command sent while down goes once it is back, said once each way', async () => {
    const { lines, log } = logged();
    const c = new RespConnection(redis.url, log);
    try {
      expect(await c.send(['SET', 'before', '1'])).toBe('OK');
      await redis.stop();
      const pending = c.send(['SET', 'during', '2']);
      await new Promise((r) => setTimeout(r, 300));
      await redis.start();
      expect(await pending).toBe('OK');
      expect(await reader.get('during')).toBe('2');
      expect(lines).toHaveLength(2);
      expect(lines[0]).toMatch(/results wait for it \(reconnecting\)/);
      expect(lines[1]).toMatch(/is back: results flow again/);
    } finally {
      c.close();
    }
  }, 30_000);

  it('authenticates and selects the database in the URL; a wrong password fails every command, said once', async () => {
    await reader.config('SET', 'requirepass', 's3cret');
    const admin = new Redis(`redis://:s3cret@127.0.0.1:${redis.port}`);
    try {
      const good = new RespConnection(`redis://:s3cret@127.0.0.1:${redis.port}/3`, logged().log);
      expect(await good.send(['SET', 'in-db-3', 'yes'])).toBe('OK');
      good.close();
      expect(await admin.get('in-db-3')).toBeNull();
      await admin.select(3);
      expect(await admin.get('in-db-3')).toBe('yes');
      const { lines, log } = logged();
      const bad = new RespConnection(`redis://:wrong@127.0.0.1:${redis.port}`, log);
      await expect(bad.send(['SET', 'x', '1'])).rejects.toThrow(/^Redis: WRONGPASS/);
      expect(lines).toHaveLength(1);
      expect(lines[0]).toMatch(/refused the results connection: Redis: WRONGPASS/);
      expect(lines[0]).not.toContain('wrong@');
    } finally {
      await admin.config('SET', 'requirepass', '');
      admin.disconnect();
      // The reader connected before the password: its connection stays authorised.
    }
  });

  it('a result batch goes as one stream entry: ids, lines as bytes (string or bytes given), facts', async () => {
    const c = new RespConnection(redis.url, logged().log);
    const batch = new ResultBatch();
    try {
      batch.add('a', '{"custom_id":"a"}', { outcome: 'succeeded', attempts: 1, promptTokens: 3, completionTokens: 4 });
      batch.add('b', new TextEncoder().encode('{"custom_id":"b","é":1}'), {
        outcome: 'failed',
        attempts: 2,
        promptTokens: 0,
        completionTokens: 0,
        cause: 'timeout_total',
      });
      await c.send(['XADD', 'batch-stream', '*', ...batch.fields()]);
      const entries = await reader.xrange('batch-stream', '-', '+');
      const fields = entries[0]![1];
      expect(fields[0]).toBe('ids');
      expect(JSON.parse(fields[1]!)).toEqual(['a', 'b']);
      expect(fields[3]).toBe('{"custom_id":"a"}\n{"custom_id":"b","é":1}');
      expect(JSON.parse(fields[5]!)).toEqual([
        [1, 1, 3, 4, null, null, null, null, null],
        [0, 2, 0, 0, null, 'timeout_total', null, null, null],
      ]);
      batch.clear();
      batch.add('c', '{"custom_id":"c"}');
      // A result without facts: the entry carries none, and the coordinator reads them from the lines.
      expect(batch.fields()).toEqual(['ids', '["c"]', 'lines', Buffer.from('{"custom_id":"c"}')]);
    } finally {
      c.close();
    }
  });
});

describe('a distributed run over TLS, with a password and a database', () => {
  let sim: RunningSim;
  let secure: TestRedis;
  let certFile: string;
  beforeAll(async () => {
    const cert = selfSignedCert();
    certFile = cert.certFile;
    [secure, sim] = await Promise.all([
      startRedis({ tls: cert, password: 'tls-pass-8c1' }),
      startSim({ profile: parseProfile({ base: 'fast' }) }),
    ]);
  }, 30_000);
  afterAll(async () => {
    await Promise.all([secure.stop(), sim.close()]);
  });

  it('runs every line once through rediss://, and the password is in no file it writes', async () => {
    const dir = tempDir();
    const out = join(dir, 'out');
    const n = 1200;
    const r = await runCli(
      [
        'run',
        writeInput(dir, n, { max_tokens: 4 }),
        '--endpoint',
        `${sim.url}/v1`,
        '--out',
        out,
        '--redis',
        `${secure.url}/2`,
        '--local-workers',
        '2',
        '--progress',
        'off',
      ],
      // The certificate is self-signed: trusted the way a company CA would be.
      { env: { ...process.env, NODE_EXTRA_CA_CERTS: certFile }, timeoutMs: 90_000 },
    );
    expect(r.code, r.stderr).toBe(0);
    const ids = loadResults(out).map((x) => x.custom_id);
    expect(ids).toHaveLength(n);
    expect(new Set(ids).size).toBe(n);
    expect(r.stderr + r.stdout).not.toContain('tls-pass-8c1');
    expect(readFileSync(join(out, 'run.json'), 'utf8')).toContain('rediss://:***@127.0.0.1');
    for (const file of filesUnder(out)) expect(readFileSync(file, 'utf8'), file).not.toContain('tls-pass-8c1');
  }, 120_000);
});
