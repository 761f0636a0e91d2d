/** shardline's library API. The CLI is a thin layer over these exports. */
export { VERSION } from './version.js';
export * from './errors.js';
export { startSim, type StartSimOptions, type RunningSim } from './sim/start-sim.js';
export { SimCore, type SimCoreOptions, type SimStats } from './sim/sim-core.js';
export type { RequestTiming } from './sim/sim-metrics.js';
export { simProfileSchema, type SimProfile, type SimProfileInput, type SimProfileFile } from './sim/profile-schema.js';
export { builtinProfiles } from './sim/builtin-profiles.js';
export { loadProfile, parseProfile } from './sim/load-profile.js';
export { capacityTpm, decodeCapacityTpm, stepMs, prefillMs } from './sim/capacity.js';
export { tokenText, completionText, countPromptTokens } from './sim/token-text.js';
export { run, type RunSummary, type RunHooks, type RunStage } from './runner/run.js';
export { sweep, type SweepOptions, type SweepResult } from './sweep/sweep.js';
export { runWorker, type WorkerOptions } from './runner/distributed/run-worker.js';
export { findKnee, type Knee, type SweepStage } from './diagnose/knee.js';
export { runOptionsSchema, type RunOptions, type RunOptionsInput } from './config/run-options.js';
export { resolveRunOptions } from './config/resolve-run-options.js';
export { parseRunOptions, type ResolvedRunOptions } from './config/resolved-run-options.js';
export { RUN_OPTIONS } from './config/run-option-table.js';
export type { ShardlineEvent, EventType, EventPayloads, Cause } from './events/event-types.js';
export { CAUSES } from './events/event-types.js';
export { analyze, type AnalyzeOptions, type AnalyzeProgress } from './diagnose/analyze.js';
export { diagnose, THRESHOLDS } from './diagnose/verdict.js';
export type { Report, Finding, Verdict, Bucket, Mode } from './diagnose/report-types.js';
export { BUCKETS, MODES } from './diagnose/report-types.js';
export { nearestRank, summarize, type PercentileSummary } from './metrics/percentiles.js';
export { computeTpm, type MinuteBucket, type TpmFigures } from './metrics/tpm.js';
export { sampleMinute, type MinuteSample } from './provenance/sample.js';
export { verifySample, type VerifyResult } from './provenance/verify.js';
export { compareReports, type Comparison, type CompareRow } from './diagnose/compare-reports.js';
export { formatComparison } from './report/format-comparison.js';
export { runDemo, DEMO_CONFIGS, type DemoOptions, type DemoResult } from './demo/run-demo.js';
export {
  renderHtmlReport,
  writeHtmlReport,
  escapeHtml,
  scriptJson,
  type HtmlReportInput,
} from './report/html-report.js';
export { formatReport } from './report/terminal-report.js';
