/**
 * A short run of bench/recovery-soak.ts (issue 15): a streaming source with a checkpoint store
 * through 150 random faults — cuts mid-envelope, silences, lost subscriptions, dropped events,
 * server-busy on SyncFolderItems and restarts — loses no event, and each recovered gap costs about
 * one SyncFolderItems call.
 */
import { describe, expect, it } from 'vitest';
import { runRecoverySoak } from '../bench/recovery-soak.js';

describe('streaming recovery soak (short)', () => {
  it('150 faults: every event received live or recovered; about one SyncFolderItems per recovered gap', async () => {
    const result = await runRecoverySoak({ faults: 150, seed: 7 });
    expect(result.lost).toEqual([]);
    expect(result.lossyGaps).toEqual({});
    expect(result.recoveredGaps).toBeGreaterThan(20);
    expect(result.restarts).toBeGreaterThan(0);
    // A page holds 512 changes; retries after a server-busy add one each.
    expect(result.syncCallsPerRecoveredGap).toBeLessThan(2);
    // Duplicates: streamed then repeated by a restart's catch-up (LR), or recovered while still in
    // flight on the stream (RL); never twice live, never twice recovered.
    expect(Object.keys(result.duplicatePatterns).every((p) => p === 'LR' || p === 'RL')).toBe(true);
  }, 120_000);

  it('without restarts, 150 faults: duplicates only of events in flight during a recovery (rare)', async () => {
    const result = await runRecoverySoak({ faults: 150, seed: 3, restarts: false });
    expect(result.lost).toEqual([]);
    expect(Object.keys(result.duplicatePatterns).every((p) => p === 'RL')).toBe(true);
    expect(result.duplicates).toBeLessThanOrEqual(result.made / 100);
    expect(result.recoveredGaps).toBeGreaterThan(20);
  }, 120_000);
});
