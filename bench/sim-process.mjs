// Shared by the benches: the simulator in its own process (its own core), via the built CLI.
import { spawn } from 'node:child_process';

const cli = new URL('../dist/cli/main.js', import.meta.url).pathname;

/** Start `shardline sim --port 0 --profile <profileArg>`; resolves once it prints its URL. */
export async function startSimProcess(profileArg) {
  const child = spawn(process.execPath, [cli, 'sim', '--port', '0', '--profile', profileArg], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const url = await new Promise((resolve, reject) => {
    let out = '';
    child.stdout.on('data', (d) => {
      out += d;
      const m = out.match(/listening on (\S+)/);
      if (m) resolve(m[1]);
    });
    child.on('exit', (c) => reject(new Error(`sim exited ${c}`)));
  });
  return { url, pid: child.pid, stop: () => child.kill('SIGTERM') };
}

/** Run the built CLI to completion (killed after `limitMs`); resolves with its stdout, rejects on a non-zero exit. */
export function runShardline(args, { limitMs = 5 * 60_000, stderr = 'inherit' } = {}) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [cli, ...args], { stdio: ['ignore', 'pipe', stderr] });
    let stdout = '';
    child.stdout.on('data', (d) => (stdout += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), limitMs);
    child.on('exit', (code) => {
      clearTimeout(timer);
      if (code !== 0) reject(new Error(`shardline ${args[0]} exited ${code}`));
      else resolve(stdout);
    });
  });
}
