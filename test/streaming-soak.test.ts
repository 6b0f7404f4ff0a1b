/**
 * The short soak: a scaled "8 hours" of the streaming source with random faults in a few seconds.
 * The long version is `npx tsx bench/soak-streaming.ts`.
 */
import { describe, expect, it } from 'vitest';
import { grows, runStreamingSoak } from '../bench/soak-streaming.js';

describe('streaming soak (short)', () => {
  it('runs a scaled 8 hours of random faults with no loss outside reported gaps, no leak and no unhandled rejection', async () => {
    const result = await runStreamingSoak({ durationMs: 6_000, scaledHours: 8, seed: 42 });
    const { samples, ...summary } = result;
    const context = JSON.stringify(summary);
    expect(result.sourceError, context).toBeUndefined();
    expect(result.unhandled, context).toEqual([]);
    expect(result.duplicates, context).toBe(0);
    expect(result.outOfOrder, context).toBe(0);
    expect(result.lostUnreported, context).toEqual([]);
    // The run really exercised the machinery.
    expect(result.delivered, context).toBeGreaterThan(50);
    expect(result.received, context).toBeGreaterThan(result.delivered / 2);
    expect(Object.keys(result.faults).length, context).toBeGreaterThanOrEqual(5);
    expect(result.lifecycle['subscribed'] ?? 0, context).toBeGreaterThan(1);
    expect(result.lifecycle['disconnected:closed'] ?? 0, context).toBeGreaterThan(0);
    // Nothing accumulates: handles, sockets and listeners stay flat, and teardown returns to the baseline.
    expect(grows(samples.map((s) => s.handles), 6), JSON.stringify(samples)).toBe(false);
    expect(Math.max(...samples.map((s) => s.agentSockets)), JSON.stringify(samples)).toBeLessThanOrEqual(4);
    expect(Math.max(...samples.map((s) => s.signalListeners)), JSON.stringify(samples)).toBeLessThanOrEqual(1);
    expect(result.leftover, context).toEqual({ tcpSockets: expect.any(Number), timeouts: expect.any(Number) });
    expect(result.leftover.tcpSockets, context).toBeLessThanOrEqual(0);
    expect(result.leftover.timeouts, context).toBeLessThanOrEqual(0);
  }, 30_000);
});
