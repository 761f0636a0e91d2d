import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { killed } from './processes.js';

/** A real redis-server (Debian's package, installed by .ci/run) on 127.0.0.1, in a temp dir, AOF on. */
export interface TestRedis {
  url: string;
  port: number;
  /** kill -9 and start again on the same port and dir: what survives is what the AOF kept. */
  restart: () => Promise<void>;
  stop: () => Promise<void>;
  /** Start it again after `stop` (same port, same dir). */
  start: () => Promise<void>;
}

export const REDIS_SERVER = process.env.REDIS_SERVER_PATH ?? '/usr/bin/redis-server';

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

/** A Redis that asks for a password, and speaks TLS only (no plain port). */
export interface RedisSecurity {
  password?: string;
  tls?: { certFile: string; keyFile: string };
}

function launch(port: number, dir: string, security: RedisSecurity): Promise<ChildProcess> {
  const tls = security.tls;
  // The CA file is the certificate itself (self-signed); clients are not asked for one.
  const listen = tls
    ? ['--port', '0', '--tls-port', String(port), '--tls-cert-file', tls.certFile, '--tls-key-file', tls.keyFile]
    : ['--port', String(port)];
  if (tls) listen.push('--tls-ca-cert-file', tls.certFile, '--tls-auth-clients', 'no');
  const args = [
    ...listen,
    ...(security.password ? ['--requirepass', security.password] : []),
    '--bind',
    '127.0.0.1',
    '--dir',
    dir,
    '--appendonly',
    'yes',
    '--appendfsync',
    'always',
    '--save',
    '',
    '--maxmemory-policy',
    'noeviction',
  ];
  const child = spawn(REDIS_SERVER, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  return new Promise((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`redis-server did not start in 10 s:\n${out}`)), 10_000);
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      if (/Ready to accept connections/.test(out)) {
        clearTimeout(timer);
        resolve(child);
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`redis-server exited ${String(code)}:\n${out}`));
    });
  });
}

/** Start one; `url` carries the password and rediss:// when `security` asks for them. */
export async function startRedis(security: RedisSecurity = {}): Promise<TestRedis> {
  if (!existsSync(REDIS_SERVER))
    throw new Error(
      `${REDIS_SERVER} is missing: install Debian's redis-server (apt-get install redis-server), as .ci/run does`,
    );
  const dir = mkdtempSync(join(tmpdir(), 'sl-redis-'));
  const port = await freePort();
  let child = await launch(port, dir, security);
  const kill = (signal: NodeJS.Signals) => killed(child, signal);
  return {
    url: `${security.tls ? 'rediss' : 'redis'}://${security.password ? `:${security.password}@` : ''}127.0.0.1:${port}`,
    port,
    restart: async () => {
      await kill('SIGKILL');
      child = await launch(port, dir, security);
    },
    stop: () => kill('SIGTERM'),
    start: async () => {
      child = await launch(port, dir, security);
    },
  };
}
