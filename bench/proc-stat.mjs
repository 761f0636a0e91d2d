// Shared by the benches: what /proc says of every process now (Linux only).
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';

const TICK_MS = 1000 / Number(spawnSync('getconf', ['CLK_TCK']).stdout.toString().trim() || 100);

/** Every process's parent pid and CPU ms so far (user + system), by pid. */
export function procStats() {
  const stats = new Map();
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = readFileSync(`/proc/${d}/stat`, 'utf8');
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      // After the command name: ppid is f[1]; utime and stime (fields 14 and 15) are f[11], f[12].
      stats.set(Number(d), { ppid: Number(f[1]), cpuMs: (Number(f[11]) + Number(f[12])) * TICK_MS });
    } catch {
      // gone already
    }
  }
  return stats;
}

/** `rootPid` and every process under it, from a `procStats()` reading. */
export function treeOf(rootPid, stats) {
  const members = new Set([rootPid]);
  for (let grew = true; grew;) {
    grew = false;
    for (const [pid, st] of stats) {
      if (members.has(st.ppid) && !members.has(pid)) {
        members.add(pid);
        grew = true;
      }
    }
  }
  return [...members].filter((pid) => stats.has(pid));
}
