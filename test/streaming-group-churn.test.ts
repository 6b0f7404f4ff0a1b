/**
 * StreamingGroup under churn: members join and leave at random while mail arrives and the server
 * fails in every way it can (cut streams, silence, throttling, Closed, lost subscriptions, missed
 * events). Every member must receive each of its events once and in wire order, except events
 * made inside a gap it was told might have lost events; and the group must end with nothing left.
 * `CHURN_SEEDS=1,2,3` runs other seeds; `CHURN_LOG=1` prints what each run did.
 */
import { describe, expect, it } from 'vitest';
import type { FaultSpec } from '../lib/testing/index.js';
import type { SubscribedEvent } from '../lib/sources/lifecycle.js';
import { expectMemberComplete, mailboxOf, startGroupHarness, type MemberRecord } from './helpers/group-harness.js';

/** A small deterministic PRNG, so a failure can be replayed by its seed. */
function mulberry32(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('StreamingGroup churn', () => {
  it.each(process.env.CHURN_SEEDS ? process.env.CHURN_SEEDS.split(',').map(Number) : [7, 1234])('seed %i: joins, leaves and faults cost no member an event outside its reported gaps', async (seed) => {
    const random = mulberry32(seed);
    const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)] as T;
    const h = await startGroupHarness({
      sim: { timeScale: 0.001, keepAliveIntervalMs: 50 },
      group: { maxSubscriptionsPerConnection: 4, heartbeatTimeoutMs: 400, regroupDelayMs: 10 },
    });
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown): void => void unhandled.push(reason);
    process.on('unhandledRejection', onUnhandled);
    try {
      let next = 0;
      const active = new Set<MemberRecord>();
      const left = new Set<MemberRecord>();
      const join = (): void => void active.add(h.join(mailboxOf(next++)));
      for (let i = 0; i < 10; i++) join();
      // Whether the server holds the member's latest subscription now (not merely: it once had
      // one). An event made for a member whose subscription is lost falls in a reported gap, and
      // the last event of the run must not, or waiting for it would never end.
      const subscribedNow = (m: MemberRecord): boolean => {
        const id = (m.lifecycle('subscribed').at(-1) as SubscribedEvent | undefined)?.subscriptionId;
        return id !== undefined && h.sim.subscriptions.some((s) => s.id === id);
      };
      const faults: Record<string, number> = {};
      // A fixed number of steps (about 3 s on a quiet machine), not a fixed time: a loaded machine
      // takes longer but does the same work, so the checks below hold at any load.
      for (let step = 0; step < 200; step++) {
        // Mail for members whose subscription exists (events before it are not theirs to get).
        for (const m of active) if (subscribedNow(m) && random() < 0.5) h.deliver(m, { type: random() < 0.5 ? 'NewMail' : 'Modified' });
        const roll = random();
        if (roll < 0.08) join();
        else if (roll < 0.13 && active.size > 4) {
          const m = pick([...active]);
          active.delete(m);
          left.add(m);
          m.subscription.unsubscribe();
        } else if (roll < 0.25) {
          const ids = [...active].flatMap((m) => (m.lifecycle('subscribed').at(-1) as SubscribedEvent | undefined)?.subscriptionId ?? []);
          const faultsToPick: FaultSpec[] = [
            { type: 'cut-mid-envelope', operation: 'GetStreamingEvents' },
            { type: 'server-busy', backOffMs: 30, operation: 'GetStreamingEvents' },
            { type: 'http-503', operation: 'Subscribe' },
            { type: 'silence', forMs: 600, operation: 'GetStreamingEvents' },
            { type: 'forget-subscriptions', subscriptionIds: ids.length > 0 ? [pick(ids)] : [] },
            { type: 'missed-events', subscriptionIds: ids.length > 0 ? [pick(ids)] : [] },
          ];
          const fault = pick(faultsToPick);
          if (!('subscriptionIds' in fault) || (fault.subscriptionIds?.length ?? 0) > 0) {
            h.sim.inject(fault);
            faults[fault.type] = (faults[fault.type] ?? 0) + 1;
          }
        } else if (roll < 0.28) {
          h.sim.forceClose();
          faults['force-close'] = (faults['force-close'] ?? 0) + 1;
        }
        await sleep(15);
      }
      h.sim.clearFaults();
      await h.until(() => [...active].every((m) => subscribedNow(m)), 'every active member subscribed');
      // After the storm: one more event each, which must arrive (no gap can cover it any more).
      for (const m of active) h.deliver(m);
      await h.until(() => [...active].every((m) => m.received.includes(m.delivered.at(-1)!.seq)), 'the last events');
      const context = JSON.stringify({ seed, faults, stats: h.group.stats(), members: next, left: left.size });
      let lost = 0;
      let received = 0;
      for (const m of active) {
        expect(m.error, `${m.mailbox} ${context}`).toBeUndefined();
        lost += expectMemberComplete(m).length;
        received += m.received.length;
      }
      for (const m of left) {
        // Members that left: what they got before leaving was still once and in order.
        expect(new Set(m.received).size, m.mailbox).toBe(m.received.length);
        expect([...m.received].sort((a, b) => a - b), m.mailbox).toEqual(m.received);
      }
      if (process.env.CHURN_LOG) console.log(context, { received, lost });
      // The run exercised the machinery.
      expect(received, context).toBeGreaterThan(200);
      expect(Object.keys(faults).length, context).toBeGreaterThanOrEqual(4);
      expect(lost, context).toBeLessThan(received);

      await h.group.close();
      expect(h.sim.subscriptions, context).toHaveLength(0);
      await h.until(() => h.sim.openStreamingConnections === 0, 'no stream open');
      expect(h.group.stats()).toMatchObject({ members: 0, streams: 0 });
      expect(unhandled).toEqual([]);
    } finally {
      process.off('unhandledRejection', onUnhandled);
      await h.stop();
    }
  }, 60_000);
});
