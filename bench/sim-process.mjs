// Shared by the benches: the simulator in its own process (its own core), via the built CLI.
import { spawn } from 'node:child_process';

const cli = new URL('../dist/cli/main.js', import.meta.url).pathname;

/** Start `shardline sim --port 0 --profile <profileArg>`; resolves once it prints its URL. */
export async function startSimProcess(profileArg) {
  const child = spawn(process.execPath, [cli, 'sim', '--port', '0', '--profile', profileArg], { stdio: ['ignore', 'pipe', 'inherit'] });
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
