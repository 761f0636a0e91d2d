/** shardline's library API. The CLI is a thin layer over these exports. */
export { VERSION } from './version.js';
export * from './config/errors.js';
export { startSim, type StartSimOptions, type RunningSim } from './sim/start-sim.js';
export { SimCore, type SimCoreOptions, type SimStats, type RequestTiming } from './sim/sim-core.js';
export { simProfileSchema, type SimProfile, type SimProfileInput, type SimProfileFile } from './sim/profile-schema.js';
export { builtinProfiles } from './sim/builtin-profiles.js';
export { loadProfile, parseProfile } from './sim/load-profile.js';
export { capacityTpm, decodeCapacityTpm, stepMs, prefillMs } from './sim/capacity.js';
export { tokenText, completionText, countPromptTokens } from './sim/token-text.js';
export { run, type RunSummary, type RunHooks } from './runner/run.js';
export { runOptionsSchema, type RunOptions, type RunOptionsInput } from './config/run-options.js';
export { resolveRunOptions } from './config/resolve-run-options.js';
export type { ShardlineEvent, EventType, EventPayloads, Cause } from './events/event-types.js';
export { CAUSES } from './events/event-types.js';
