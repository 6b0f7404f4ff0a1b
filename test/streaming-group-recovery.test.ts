/**
 * StreamingGroup members with a `checkpoint` store (issue 15): a connection of 200 subscriptions cut
 * mid-envelope is recovered for every member on it — nothing lost, one SyncFolderItems per member
 * and gap (its changes fit one page).
 */
import { afterEach, describe, expect, it } from 'vitest';
import { MemoryCheckpointStore } from '../lib/checkpoint/memory-store.js';
import type { GapEvent } from '../lib/sources/lifecycle.js';
import { allConnected, mailboxOf, startGroupHarness, type GroupHarness, type MemberRecord } from './helpers/group-harness.js';

let h: GroupHarness | undefined;
afterEach(async () => {
  await h?.stop();
  h = undefined;
});

const syncCalls = (g: GroupHarness): number => g.sim.requests.filter((r) => r.operation === 'SyncFolderItems').length;
const gapsOf = (m: MemberRecord): GapEvent[] => m.lifecycle('gap') as GapEvent[];

describe('StreamingGroup members with a checkpoint store', () => {
  it('250 members, one connection cut mid-envelope: 0 lost, one SyncFolderItems per member and gap', async () => {
    h = await startGroupHarness();
    const g = h;
    const store = new MemoryCheckpointStore();
    const members = Array.from({ length: 250 }, (_, i) => g.join(mailboxOf(i), { checkpoint: store, folders: ['inbox'], eventTypes: ['NewMail'] }));
    await g.until(() => allConnected(g), 'all connected', 60_000);
    // One baseline per member, before it subscribed.
    expect(syncCalls(g)).toBe(250);
    expect(store.keys()).toHaveLength(250);
    for (const m of members) g.deliver(m);
    await g.allReceived();
    const before = syncCalls(g);
    g.sim.inject({ type: 'cut-mid-envelope', operation: 'GetStreamingEvents' });
    for (const m of members) g.deliver(m);
    await g.until(() => members.some((m) => gapsOf(m).length > 0), 'a gap');
    for (const m of members) g.deliver(m);
    // Live or recovered, every member gets every event.
    await g.allReceived(members, 60_000);
    const hit = members.filter((m) => gapsOf(m).length > 0);
    await g.until(() => hit.every((m) => gapsOf(m).every((gap) => gap.recovered !== undefined || !gap.eventsMayBeLost)), 'recoveries reported');
    // The cut connection's members had lossy gaps (recovered); the other connection's members may
    // see a clean `Closed` gap too when the test outlives a (time-scaled, 1.8 s) connection timeout.
    const lossy = hit.filter((m) => gapsOf(m).some((gap) => gap.recovered !== undefined));
    expect(lossy.length).toBeGreaterThan(0);
    expect(lossy.length).toBeLessThanOrEqual(200);
    let recovered = 0;
    for (const m of hit) {
      for (const gap of gapsOf(m)) {
        expect(gap.eventsMayBeLost).toBe(false);
        if (gap.recovered !== undefined) expect(gap.recoveryRequests).toBe(1);
        recovered += gap.recovered ?? 0;
      }
    }
    // Requests bounded: one per member whose gap may have lost events.
    const lossyGaps = hit.flatMap(gapsOf).filter((gap) => gap.recovered !== undefined).length;
    expect(syncCalls(g) - before).toBe(lossyGaps);
    expect(recovered).toBeGreaterThan(0);
    // Duplicates only of recovered events.
    for (const m of members) {
      const live = m.signals.flatMap((s) => (s.type === 'notification' ? s.notification.events.filter((e) => e.type !== 'Status' && !e.recovered) : []));
      expect(new Set(live.map((e) => (e.type === 'Status' ? '' : e.itemId?.changeKey))).size).toBe(live.length);
    }
  }, 120_000);

  it('a member still taking its baseline when the group closes completes', async () => {
    h = await startGroupHarness();
    const g = h;
    g.sim.inject({ type: 'server-busy', backOffMs: 2_000, operation: 'SyncFolderItems' });
    const m = g.join(mailboxOf(1), { checkpoint: new MemoryCheckpointStore() });
    await g.until(() => syncCalls(g) >= 1, 'the baseline request');
    await g.group.close();
    await g.until(() => m.completed, 'completed');
  });
});
