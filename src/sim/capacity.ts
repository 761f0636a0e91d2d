import type { SimProfile } from './profile-schema.js';

/** Duration of one decode step with `activeSeqs` sequences holding slots, in ms (before jitter). */
export function stepMs(profile: SimProfile, activeSeqs: number): number {
  return profile.step_ms_base + profile.step_ms_per_seq * activeSeqs;
}

/** Prefill duration for a prompt of `promptTokens`, in ms (before jitter). */
export function prefillMs(profile: SimProfile, promptTokens: number): number {
  return profile.prefill_ms_base + (promptTokens / profile.prefill_tokens_per_s) * 1000;
}

/**
 * Theoretical completion tokens/min when every slot is busy with requests of `promptTokens` in and
 * `completionTokens` out: each slot cycles through prefill then ceil(N/k) steps at full batch.
 *
 *   capacity = 60000 × slots × N / (prefill_ms(P) + ceil(N / k) × step_ms(slots))
 *
 * Infinity when both costs are zero (the run is then CPU-bound on whoever is slower).
 */
export function capacityTpm(
  profile: SimProfile,
  promptTokens = profile.reference_prompt_tokens,
  completionTokens = profile.default_max_tokens,
): number {
  const steps = Math.ceil(completionTokens / profile.tokens_per_step);
  const cycleMs = prefillMs(profile, promptTokens) + steps * stepMs(profile, profile.slots);
  return cycleMs <= 0 ? Infinity : (60_000 * profile.slots * completionTokens) / cycleMs;
}

/** Decode-only upper bound (no prefill): 60000 × slots × k / step_ms(slots). */
export function decodeCapacityTpm(profile: SimProfile): number {
  const ms = stepMs(profile, profile.slots);
  return ms <= 0 ? Infinity : (60_000 * profile.slots * profile.tokens_per_step) / ms;
}
