// Shared by the benches that need Redis: a throwaway redis-server on a free loopback port.
import { spawn, spawnSync } from 'node:child_process';
import { createServer } from 'node:net';

function freePort() {
  return new Promise((resolve) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

/**
 * Start redis-server on 127.0.0.1 with its files in `dir`, no snapshots (`extraArgs` appended); exits
 * the bench with 2, naming it, when redis-server is not installed. Resolves with its URL and a stop.
 */
export async function startRedisProcess(bench, dir, extraArgs = []) {
  if (spawnSync('redis-server', ['--version']).error) {
    console.error(`${bench} needs redis-server on PATH (Debian: apt-get install redis-server)`);
    process.exit(2);
  }
  const port = await freePort();
  const child = spawn(
    'redis-server',
    ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--save', '', ...extraArgs],
    { stdio: 'ignore' },
  );
  await new Promise((r) => setTimeout(r, 500));
  return { url: `redis://127.0.0.1:${port}`, stop: () => child.kill('SIGTERM') };
}
