import { Command } from 'commander';
import { VERSION } from '../version.js';
import { registerCompareCommand } from './compare-command.js';
import { registerDemoCommand } from './demo-command.js';
import { registerProvenanceCommands } from './provenance-commands.js';
import { registerReportCommand } from './report-command.js';
import { registerRunCommand } from './run-command.js';
import { registerSimCommand } from './sim-command.js';
import { registerSweepCommand } from './sweep-command.js';
import { registerWorkerCommand } from './worker-command.js';

/** Build the `shardline` command tree (no side effects until parsed). */
export function createProgram(): Command {
  const program = new Command('shardline')
    .description('Run, record and diagnose large LLM request jobs against OpenAI-compatible endpoints')
    .version(VERSION, '-V, --version')
    .exitOverride()
    .showHelpAfterError('(run with --help for usage)');
  registerRunCommand(program);
  registerReportCommand(program);
  registerCompareCommand(program);
  registerDemoCommand(program);
  registerProvenanceCommands(program);
  registerSimCommand(program);
  registerSweepCommand(program);
  registerWorkerCommand(program);
  return program;
}
