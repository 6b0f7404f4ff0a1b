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
    // Duplicates come only from restarts: the catch-up repeats what was streamed after the last stored state.
    expect(Object.keys(result.duplicatePatterns).every((p) => p === 'LR')).toBe(true);
  }, 120_000);

  it('without restarts, 150 faults deliver every event exactly once', async () => {
    const result = await runRecoverySoak({ faults: 150, seed: 3, restarts: false });
    expect(result.lost).toEqual([]);
    expect(result.duplicates).toBe(0);
    expect(result.recoveredGaps).toBeGreaterThan(20);
  }, 120_000);
});
