import type { Command } from 'commander';
import { addOptions, flagValues } from '../config/option-table.js';
import { parseSimOptions, SIM_OPTIONS } from '../config/sim-options.js';
import { builtinProfiles } from '../sim/builtin-profiles.js';
import { capacityTpm, decodeCapacityTpm } from '../sim/capacity.js';
import { loadProfile } from '../sim/load-profile.js';
import { startSim } from '../sim/start-sim.js';

/** `shardline sim`: serve the OpenAI-compatible simulator until SIGINT/SIGTERM. */
export function registerSimCommand(program: Command): void {
  const command = program
    .command('sim')
    .description('Serve an OpenAI-compatible inference simulator with a capacity model and fault injection');
  addOptions(command, SIM_OPTIONS, undefined, {
    profile: { help: `built-in profile (${[...builtinProfiles.keys()].join(', ')}) or YAML file` },
  });
  command.action(async (_raw: unknown, cmd: Command) => {
    const opts = parseSimOptions(flagValues(cmd, SIM_OPTIONS));
    if (opts.listProfiles) {
      process.stdout.write(formatProfileList());
      return;
    }
    const profile = loadProfile(opts.profile);
    const sim = await startSim({ profile, host: opts.host, port: opts.port, seed: opts.seed });
    process.stdout.write(`listening on ${sim.url}\n`);
    await new Promise<void>((resolve) => {
      const stop = () => {
        process.off('SIGINT', stop);
        process.off('SIGTERM', stop);
        void sim.close().then(resolve);
      };
      process.on('SIGINT', stop);
      process.on('SIGTERM', stop);
    });
  });
}

function formatProfileList(): string {
  const rows = [['profile', 'slots', 'queue', 'capacity tok/min', 'decode bound tok/min', 'description']];
  for (const p of builtinProfiles.values()) {
    rows.push([
      p.name,
      String(p.slots),
      String(p.queue_limit),
      fmt(capacityTpm(p)),
      fmt(decodeCapacityTpm(p)),
      p.description,
    ]);
  }
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  const lines = rows.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join('  '));
  return (
    `${lines.join('\n')}\n\ncapacity = 60000 × slots × N / (prefill_ms(P) + ceil(N/k) × step_ms(slots)), at ` +
    `each profile's reference P and N (see docs/sim.md)\n`
  );
}

function fmt(x: number): string {
  return Number.isFinite(x) ? Math.round(x).toLocaleString('en-US') : 'unbounded';
}
