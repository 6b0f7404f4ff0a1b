/**
 * The one polling wait of the test suite.
 *
 * Tests wait on signals, the simulator's clock or counts, never on the wall clock: the suite must
 * pass on a loaded two-core machine beside CPU burners, where anything can take many times its
 * quiet-machine time. So the only deadline here is a hang guard ({@link HANG_GUARD_MS}), which sits
 * under vitest's own testTimeout/hookTimeout (60 s, vitest.config.ts) so that a wait that will never
 * be met fails with a message naming what it waited for (and the state, through `describe`) rather
 * than a bare vitest timeout. It is not a speed bound: do not pass a short `hangGuardMs` to assert
 * that something happens quickly.
 */

/**
 * How long a wait may last before it is taken for a hang. Under the 60 s testTimeout/hookTimeout
 * of vitest.config.ts; a test that waits several times, or that sets a `{ timeout }` of its own,
 * must allow for the sum.
 */
export const HANG_GUARD_MS = 50_000;

/** Options of {@link until}. */
export interface UntilOptions {
  /** The hang guard, in ms (default {@link HANG_GUARD_MS}). Not a speed bound. */
  hangGuardMs?: number;
  /**
   * Pause between polls, in ms (default 5). 0 polls on each turn of the event loop (setImmediate),
   * without timers: for tests that fake setTimeout.
   */
  intervalMs?: number;
  /** The state worth showing when the wait times out (lifecycle, stats, ...), appended to the message. */
  describe?: () => string;
  /**
   * Checked after each poll that found `predicate` false: an error returned here ends the wait at
   * once (thrown as is), e.g. "the source under test failed while we waited". Return `undefined`
   * to keep waiting.
   */
  failWhen?: () => Error | undefined;
}

const pause = (ms: number): Promise<void> => new Promise((resolve) => (ms === 0 ? setImmediate(resolve) : setTimeout(resolve, ms)));

/**
 * Polls `predicate` (which may be async) every few ms until it returns true.
 *
 * Fails with `timed out waiting for <what>` (plus `describe()`) only after the hang guard, so that a
 * wait which would never end is diagnosed before vitest's own timeout; see the module comment for
 * why there is no shorter deadline. `options.failWhen` ends the wait early with its error.
 */
export async function until(predicate: () => boolean | Promise<boolean>, what: string, options: UntilOptions = {}): Promise<void> {
  const { hangGuardMs = HANG_GUARD_MS, intervalMs = 5, describe, failWhen } = options;
  const started = performance.now();
  for (;;) {
    if (await predicate()) return;
    const failure = failWhen?.();
    if (failure !== undefined) throw failure;
    if (performance.now() - started > hangGuardMs) {
      const state = describe === undefined ? '' : `; ${describe()}`;
      throw new Error(`timed out waiting for ${what}${state}`);
    }
    await pause(intervalMs);
  }
}
