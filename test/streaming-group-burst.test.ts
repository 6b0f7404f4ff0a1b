/**
 * A burst of joins larger than maxConcurrentSubscribes: the members beyond the free Subscribe
 * slots wait in the group (parked) until a slot frees. What must hold: never more Subscribes in
 * flight than maxConcurrentSubscribes, Subscribes in join order, every member subscribed once, a
 * member that leaves while it waits sends none, and a group closed with members waiting
 * subscribes none of them.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { allConnected, mailboxOf, startGroupHarness, type GroupHarness } from './helpers/group-harness.js';

const harnesses: GroupHarness[] = [];
afterEach(async () => {
  await Promise.all(harnesses.splice(0).map((h) => h.stop()));
});

/** Holds each Subscribe in the simulator for `ms` (before it is answered), counting those in flight. */
function slowSubscribes(ms: number): { validateRequest: (xml: string) => Promise<undefined>; peak: () => number; order: string[] } {
  let inFlight = 0;
  let peak = 0;
  const order: string[] = [];
  return {
    order,
    peak: () => peak,
    validateRequest: async (xml: string) => {
      if (!xml.includes('<m:Subscribe>')) return undefined;
      order.push(/<t:SmtpAddress>([^<]+)</.exec(xml)?.[1] ?? '?');
      peak = Math.max(peak, ++inFlight);
      await new Promise((resolve) => setTimeout(resolve, ms));
      inFlight--;
      return undefined;
    },
  };
}

describe('StreamingGroup burst of joins', () => {
  it('subscribes every member once, in join order, never more than maxConcurrentSubscribes at once', async () => {
    const slow = slowSubscribes(5);
    const h = await startGroupHarness({ sim: { validateRequest: slow.validateRequest }, group: { maxConcurrentSubscribes: 3 } });
    harnesses.push(h);
    const members = Array.from({ length: 40 }, (_, i) => h.join(mailboxOf(i)));
    await h.until(() => allConnected(h), 'all connected');
    expect(slow.peak()).toBe(3);
    expect(slow.order).toEqual(members.map((m) => m.mailbox));
    expect(h.group.stats()).toMatchObject({ subscriptions: 40, members: 40 });
    for (const m of members) expect(m.lifecycle('subscribed')).toHaveLength(1);
  });

  it('a member that leaves while it waits sends no Subscribe; the others still subscribe', async () => {
    const slow = slowSubscribes(20);
    const h = await startGroupHarness({ sim: { validateRequest: slow.validateRequest }, group: { maxConcurrentSubscribes: 2 } });
    harnesses.push(h);
    const members = Array.from({ length: 10 }, (_, i) => h.join(mailboxOf(i)));
    // Members 2–9 wait; 4 and 7 leave before their turn.
    members[4]!.subscription.unsubscribe();
    members[7]!.subscription.unsubscribe();
    const staying = members.filter((_, i) => i !== 4 && i !== 7);
    await h.until(() => staying.every((m) => m.lifecycle('connected').length > 0), 'the others connected');
    expect(slow.order).toEqual(staying.map((m) => m.mailbox));
    expect(h.group.stats()).toMatchObject({ subscriptions: 8, members: 8 });
  });

  it('a group closed with members waiting subscribes none of them', async () => {
    const slow = slowSubscribes(30);
    const h = await startGroupHarness({ sim: { validateRequest: slow.validateRequest }, group: { maxConcurrentSubscribes: 2 } });
    harnesses.push(h);
    const members = Array.from({ length: 10 }, (_, i) => h.join(mailboxOf(i)));
    await h.until(() => slow.order.length === 2, 'two Subscribes sent');
    await h.group.close();
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(slow.order).toEqual([mailboxOf(0), mailboxOf(1)]);
    for (const m of members) expect(m.completed || m.error !== undefined).toBe(true);
    expect(h.sim.subscriptions).toHaveLength(0);
  });
});
