/**
 * Exchange's retry schedule for a push listener that did not answer: 30 s, then 1, 2, 4, 8, 16 …
 * minutes, until the next retry would pass StatusFrequency; then the subscription is given up.
 *
 * @packageDocumentation
 */

/** Exchange's delays before retries 1–6; later ones keep doubling. */
export const EXCHANGE_RETRY_SCHEDULE_MS: readonly number[] = [30_000, 60_000, 120_000, 240_000, 480_000, 960_000];

/**
 * The delay before retry number `retryIndex + 1`: the schedule's entry, or past its end the last
 * entry doubled once per step, as Exchange keeps doubling.
 */
export function retryDelayMs(schedule: readonly number[], retryIndex: number): number {
  const entry = schedule[retryIndex];
  if (entry !== undefined) return entry;
  const last = schedule[schedule.length - 1] ?? EXCHANGE_RETRY_SCHEDULE_MS[0]!;
  return last * 2 ** (retryIndex - schedule.length + 1);
}

/**
 * Whether a retry that waits `delayMs` after `elapsedMs` of earlier retry waits is still within
 * the push contract: Exchange stops once the next retry would pass StatusFrequency.
 */
export function retryAllowed(elapsedMs: number, delayMs: number, statusFrequencyMs: number): boolean {
  return elapsedMs + delayMs <= statusFrequencyMs;
}
