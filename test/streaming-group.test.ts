/**
 * StreamingGroup against EwsSimulator: many subscriptions on few GetStreamingEvents connections,
 * demultiplexed per member, with joins, leaves and failures that never cost another member an event.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { EwsConnectionTakenError } from '../lib/errors.js';
import { SOAP_ACTIONS, buildGetStreamingEventsRequest } from '../lib/ews/requests.js';
import { openStream } from '../lib/ews/transport.js';
import type { GapEvent, SubscribedEvent } from '../lib/sources/lifecycle.js';
import { hybridSignals } from '../lib/sources/hybrid.js';
import { StreamingGroup } from '../lib/sources/streaming-group.js';
import { sequenceOf } from '../lib/testing/index.js';
import { SERVICE, allConnected, expectMemberComplete, mailboxOf, startGroupHarness, type GroupHarness, type MemberRecord } from './helpers/group-harness.js';

const harnesses: GroupHarness[] = [];
async function harness(...args: Parameters<typeof startGroupHarness>): Promise<GroupHarness> {
  const h = await startGroupHarness(...args);
  harnesses.push(h);
  return h;
}

afterEach(async () => {
  await Promise.all(harnesses.splice(0).map((h) => h.stop()));
});

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function requests(h: GroupHarness, operation: string) {
  return h.sim.requests.filter((r) => r.operation === operation);
}

/** Another client opens a stream for `subscriptionId` (the server moves it there). */
function steal(h: GroupHarness, subscriptionId: string): { thief: AbortController; stolen: Promise<unknown> } {
  const thief = new AbortController();
  const stolen = openStream(
    { soapAction: SOAP_ACTIONS.GetStreamingEvents, envelope: buildGetStreamingEventsRequest({ subscriptionIds: [subscriptionId], connectionTimeoutMinutes: 1 }) },
    { url: h.sim.url, auth: SERVICE, signal: thief.signal, onEnvelope: () => undefined },
  ).catch(() => undefined);
  return { thief, stolen };
}

function joinMany(h: GroupHarness, count: number, from = 0): MemberRecord[] {
  return Array.from({ length: count }, (_, i) => h.join(mailboxOf(from + i)));
}

describe('StreamingGroup', () => {
  it('puts 201 subscriptions on 2 connections and gives each member only its own events', async () => {
    const h = await harness();
    const members = joinMany(h, 201);
    await h.until(() => allConnected(h), 'all connected');
    await h.until(() => h.sim.openStreamingConnections === 2 && h.group.stats().streams === 2, 'two open streams');
    expect(h.group.stats()).toMatchObject({ subscriptions: 201, members: 201, connections: 2, streams: 2 });
    for (const m of members) h.deliver(m);
    h.deliver(members[0]!, { type: 'Created' });
    h.deliver(members[200]!, { type: 'Modified' });
    await h.allReceived();
    for (const m of members) {
      expect(expectMemberComplete(m)).toEqual([]);
      expect(m.lifecycle('gap')).toEqual([]);
      expect(m.error).toBeUndefined();
    }
    expect(requests(h, 'Subscribe')).toHaveLength(201);
    // Each GetStreamingEvents names at most 200 ids and impersonates the anchor (the first member).
    const anchor = mailboxOf(0);
    for (const r of requests(h, 'GetStreamingEvents')) {
      expect(r.mailbox).toBe(anchor);
    }
  });

  it('respects maxSubscriptionsPerConnection', async () => {
    const h = await harness({ group: { maxSubscriptionsPerConnection: 10 } });
    joinMany(h, 25);
    await h.until(() => allConnected(h), 'all connected');
    await h.until(() => h.sim.openStreamingConnections === 3 && h.group.stats().streams === 3, 'three open streams');
    expect(h.group.stats()).toMatchObject({ subscriptions: 25, connections: 3 });
  });

  it('a member joining a busy connection costs the others no event, no gap and no reorder', async () => {
    const h = await harness({ group: { maxSubscriptionsPerConnection: 50 } });
    const first = joinMany(h, 5);
    await h.until(() => allConnected(h), 'first five connected');
    let flowing = true;
    const flow = (async () => {
      let i = 0;
      while (flowing) {
        for (const m of first) h.deliver(m, { type: i % 2 === 0 ? 'NewMail' : 'Modified' });
        i++;
        await sleep(2);
      }
    })();
    // Five joins, one at a time: every one replaces the shared response while events flow.
    const late: MemberRecord[] = [];
    for (let i = 0; i < 5; i++) {
      late.push(h.join(mailboxOf(100 + i)));
      await h.until(() => allConnected(h), `late member ${i} connected`);
      await sleep(30);
    }
    flowing = false;
    await flow;
    for (const m of late) h.deliver(m);
    await h.allReceived();
    for (const m of h.members) {
      expect(expectMemberComplete(m)).toEqual([]);
      expect(m.lifecycle('gap'), m.mailbox).toEqual([]);
      expect(m.lifecycle('disconnected'), m.mailbox).toEqual([]);
    }
    expect(first[0]!.received.length).toBeGreaterThan(20);
    // One response per membership change, and the replaced ones were let go.
    expect(requests(h, 'GetStreamingEvents').length).toBeGreaterThanOrEqual(6);
    await h.until(() => h.sim.openStreamingConnections === 1, 'one open stream');
    expect(h.group.stats().streams).toBe(1);
  });

  it('a member leaving is unsubscribed while the others keep their connection', async () => {
    const h = await harness();
    const [a, b, c] = joinMany(h, 3);
    await h.until(() => allConnected(h), 'connected');
    const streamsBefore = requests(h, 'GetStreamingEvents').length;
    const bId = (b!.lifecycle('subscribed')[0] as SubscribedEvent).subscriptionId;
    b!.subscription.unsubscribe();
    await h.until(() => requests(h, 'Unsubscribe').length === 1, 'Unsubscribe');
    expect(h.sim.subscriptions.map((s) => s.id)).not.toContain(bId);
    h.deliver(a!);
    h.deliver(c!);
    await h.allReceived([a!, c!]);
    expect(requests(h, 'GetStreamingEvents')).toHaveLength(streamsBefore);
    expect(h.group.stats()).toMatchObject({ members: 2, subscriptions: 2, connections: 1 });
  });

  it('a subscription the server lost is resubscribed alone; the others see nothing', async () => {
    const h = await harness();
    const [a, b] = joinMany(h, 2);
    await h.until(() => allConnected(h), 'connected');
    const aId = (a!.lifecycle('subscribed')[0] as SubscribedEvent).subscriptionId;
    h.sim.inject({ type: 'forget-subscriptions', subscriptionIds: [aId] });
    await h.until(() => a!.lifecycle('subscribed').length === 2, 'a resubscribed');
    await h.until(() => a!.lifecycle('connected').length === 2, 'a reconnected');
    const resubscribed = a!.lifecycle('subscribed')[1] as SubscribedEvent;
    expect(resubscribed.previousSubscriptionId).toBe(aId);
    const gaps = a!.lifecycle('gap') as GapEvent[];
    expect(gaps).toHaveLength(1);
    expect(gaps[0]).toMatchObject({ reason: 'subscription-lost', subscriptionKept: false, eventsMayBeLost: true });
    h.deliver(a!);
    h.deliver(b!);
    await h.allReceived();
    expect(b!.lifecycle('gap')).toEqual([]);
    expect(b!.lifecycle('disconnected')).toEqual([]);
    expect(b!.lifecycle('subscribed')).toHaveLength(1);
  });

  it('missed events are reported to the member they concern only', async () => {
    const h = await harness();
    const [a, b] = joinMany(h, 2);
    await h.until(() => allConnected(h), 'connected');
    const aId = (a!.lifecycle('subscribed')[0] as SubscribedEvent).subscriptionId;
    h.sim.inject({ type: 'missed-events', subscriptionIds: [aId] });
    h.deliver(a!);
    await h.until(() => a!.lifecycle('gap').length === 1, 'gap');
    expect(a!.lifecycle('gap')[0]).toMatchObject({ reason: 'missed-events', subscriptionKept: true, eventsMayBeLost: true });
    expect(b!.lifecycle('gap')).toEqual([]);
  });

  it('a cut connection is reconnected for every member on it, each told of its gap', async () => {
    const h = await harness();
    const members = joinMany(h, 4);
    await h.until(() => allConnected(h), 'connected');
    for (const m of members) h.deliver(m);
    await h.allReceived();
    h.sim.inject({ type: 'cut-mid-envelope', operation: 'GetStreamingEvents' });
    for (const m of members) h.deliver(m);
    await h.until(() => members.every((m) => m.lifecycle('connected').length === 2), 'all reconnected');
    for (const m of members) h.deliver(m);
    await h.until(() => members.every((m) => m.received.includes(m.delivered.at(-1)!.seq)), 'last events');
    for (const m of members) {
      expectMemberComplete(m);
      expect(m.lifecycle('disconnected')[0]).toMatchObject({ reason: 'connection-error' });
      expect(m.lifecycle('gap')[0]).toMatchObject({ subscriptionKept: true, eventsMayBeLost: true });
    }
  });

  it('reopens at once after ConnectionStatus Closed, losing nothing', async () => {
    const h = await harness();
    const members = joinMany(h, 3);
    await h.until(() => allConnected(h), 'connected');
    for (let cycle = 1; cycle <= 3; cycle++) {
      for (const m of members) h.deliver(m);
      await h.allReceived();
      h.sim.forceClose();
      for (const m of members) h.deliver(m);
      await h.until(() => members.every((m) => m.lifecycle('connected').length === cycle + 1), `reconnect ${cycle}`);
    }
    await h.allReceived();
    for (const m of members) {
      expect(expectMemberComplete(m)).toEqual([]);
      for (const gap of m.lifecycle('gap')) expect(gap).toMatchObject({ reason: 'closed', eventsMayBeLost: false });
    }
    expect(requests(h, 'Subscribe')).toHaveLength(3);
  });

  it('waits exactly the server back-off, then reconnects every member', async () => {
    const h = await harness();
    const members = joinMany(h, 2);
    await h.until(() => allConnected(h), 'connected');
    h.sim.inject({ type: 'server-busy', backOffMs: 150, operation: 'GetStreamingEvents' });
    h.sim.forceClose();
    await h.until(() => members.every((m) => m.lifecycle('connected').length === 2), 'reconnected');
    for (const m of members) {
      const retrying = m.lifecycle('retrying');
      expect(retrying[0]).toMatchObject({ reason: 'server-busy', delayMs: 150, serverRequested: true });
    }
  });

  it('another client taking one subscription errors that member only', async () => {
    const h = await harness();
    const [a, b] = joinMany(h, 2);
    await h.until(() => allConnected(h), 'connected');
    const aId = (a!.lifecycle('subscribed')[0] as SubscribedEvent).subscriptionId;
    const { thief, stolen } = steal(h, aId);
    await h.until(() => a!.error !== undefined, 'a errored');
    expect(a!.error).toBeInstanceOf(EwsConnectionTakenError);
    expect((a!.error as EwsConnectionTakenError).subscriptionIds).toEqual([aId]);
    thief.abort();
    await stolen;
    h.deliver(b!);
    await h.allReceived([b!]);
    expect(b!.error).toBeUndefined();
  });

  it("with onConnectionTaken 'reconnect' a taken subscription is reported and taken back", async () => {
    const h = await harness({ group: { onConnectionTaken: 'reconnect' } });
    const [a, b] = joinMany(h, 2);
    await h.until(() => allConnected(h), 'connected');
    const aId = (a!.lifecycle('subscribed')[0] as SubscribedEvent).subscriptionId;
    const { thief, stolen } = steal(h, aId);
    await h.until(() => a!.lifecycle('connected').length === 2, 'a taken back');
    expect(a!.lifecycle('disconnected')[0]).toMatchObject({ reason: 'connection-taken' });
    expect(a!.lifecycle('gap')[0]).toMatchObject({ subscriptionKept: true, eventsMayBeLost: true });
    expect(a!.error).toBeUndefined();
    thief.abort();
    await stolen;
    h.deliver(a!);
    h.deliver(b!);
    await h.allReceived();
    expect(b!.lifecycle('disconnected')).toEqual([]);
  });

  it('a member the server refuses (impersonation denied) errors alone', async () => {
    const h = await harness({ sim: { impersonation: { [SERVICE.username]: [mailboxOf(0), mailboxOf(1)] } } });
    const [a, b, denied] = [h.join(mailboxOf(0)), h.join(mailboxOf(1)), h.join('ceo@contoso.com')];
    await h.until(() => denied!.error !== undefined, 'denied errored');
    expect(denied!.error).toMatchObject({ responseCode: 'ErrorImpersonateUserDenied', retriable: false });
    await h.until(() => allConnected(h, [a!, b!]), 'others connected');
    h.deliver(a!);
    h.deliver(b!);
    await h.allReceived([a!, b!]);
  });

  it('close() completes every member, unsubscribes every subscription and leaves no stream open', async () => {
    const h = await harness();
    const members = joinMany(h, 12);
    await h.until(() => allConnected(h), 'connected');
    await h.group.close();
    for (const m of members) expect(m.completed).toBe(true);
    expect(requests(h, 'Unsubscribe')).toHaveLength(12);
    expect(h.sim.subscriptions).toHaveLength(0);
    await h.until(() => h.sim.openStreamingConnections === 0, 'streams closed');
    expect(h.group.stats()).toMatchObject({ members: 0, streams: 0 });
    expect(h.group.closed).toBe(true);
    // A member asked for after close completes at once.
    let completed = false;
    h.group.signals({ mailbox: mailboxOf(99) }).subscribe({ complete: () => (completed = true) });
    expect(completed).toBe(true);
  });

  it('destroy() closes the streams without Unsubscribe; aborting the group signal closes gracefully', async () => {
    const h = await harness();
    joinMany(h, 3);
    await h.until(() => allConnected(h), 'connected');
    h.group.destroy();
    await h.until(() => h.sim.openStreamingConnections === 0, 'streams closed');
    expect(requests(h, 'Unsubscribe')).toHaveLength(0);
    for (const m of h.members) expect(m.completed).toBe(true);

    const controller = new AbortController();
    const h2 = await harness({ group: { signal: controller.signal } });
    joinMany(h2, 2);
    await h2.until(() => allConnected(h2), 'connected');
    controller.abort();
    await h2.until(() => requests(h2, 'Unsubscribe').length === 2, 'unsubscribed');
    for (const m of h2.members) expect(m.completed).toBe(true);
  });

  it('a member that leaves while its Subscribe is in flight leaves no subscription behind', async () => {
    const h = await harness();
    const m = h.join(mailboxOf(0));
    m.subscription.unsubscribe();
    await h.until(() => requests(h, 'Subscribe').length === 1, 'Subscribe sent');
    await h.group.close();
    expect(h.sim.subscriptions).toHaveLength(0);
  });

  it('carries the doorbells of hybrid sources on shared connections', async () => {
    const h = await harness();
    const mailboxes = [0, 1, 2, 3].map((i) => mailboxOf(i));
    const got = new Map<string, number[]>(mailboxes.map((m) => [m, []]));
    const doorbellsConnected = new Set<string>();
    // The pull side's own subscription too: an event made before it exists is not its to deliver,
    // and on a loaded machine a doorbell may connect first.
    const pullSubscribed = new Set<string>();
    const subscriptions = mailboxes.map((mailbox) =>
      hybridSignals({
        url: h.sim.url,
        auth: SERVICE,
        mailbox,
        // A poll this slow never delivers within the test: only the doorbell can.
        pollIntervalMs: 600_000,
        doorbellGroup: h.group,
      }).subscribe((signal) => {
        if (signal.type === 'doorbell' && signal.event.type === 'connected') doorbellsConnected.add(mailbox);
        if (signal.type === 'subscribed') pullSubscribed.add(mailbox);
        if (signal.type === 'notification') for (const e of signal.notification.events) if (sequenceOf(e) !== undefined) got.get(mailbox)!.push(sequenceOf(e)!);
      }),
    );
    try {
      await h.until(() => doorbellsConnected.size === 4 && pullSubscribed.size === 4, 'every doorbell connected and every pull subscription made');
      expect(h.sim.openStreamingConnections).toBe(1);
      expect(h.group.stats()).toMatchObject({ members: 4, connections: 1 });
      const sent = mailboxes.map((m) => h.sim.deliver(m, { type: 'NewMail' }).seq);
      await h.until(() => mailboxes.every((m, i) => got.get(m)!.includes(sent[i]!)), 'each event, rung by the shared doorbell');
    } finally {
      for (const s of subscriptions) s.unsubscribe();
    }
    await h.until(() => h.sim.subscriptions.length === 0, 'pull subscriptions and doorbells removed');
    let invalid: unknown;
    hybridSignals({ url: h.sim.url, doorbellGroup: {} as never }).subscribe({ error: (e: unknown) => (invalid = e) });
    expect(invalid).toBeInstanceOf(TypeError);
    expect(String(invalid)).toMatch(/doorbellGroup must be a StreamingGroup/);
  });

  it('validates options, naming the option', () => {
    const url = 'http://127.0.0.1:1/EWS/Exchange.asmx';
    expect(() => new StreamingGroup({ url, maxSubscriptionsPerConnection: 201 })).toThrow(/maxSubscriptionsPerConnection must be 1–200/);
    expect(() => new StreamingGroup({ url, regroupDelayMs: -1 })).toThrow(/^regroupDelayMs must be a finite number of milliseconds ≥ 0 \(got -1\)$/);
    expect(() => new StreamingGroup(null as never)).toThrow(/^options must be an object \(got null\)$/);
    expect(() => new StreamingGroup({ url, maxConcurrentSubscribes: 0 })).toThrow(/maxConcurrentSubscribes/);
    expect(() => new StreamingGroup({ url, connectionTimeoutMinutes: 31 })).toThrow(/connectionTimeoutMinutes must be 1–30/);
    expect(() => new StreamingGroup({ url, folders: ['inbox'] } as never)).toThrow(/folders is a member option/);
    const group = new StreamingGroup({ url });
    let error: unknown;
    group.signals({ folders: 'inbox' as never }).subscribe({ error: (e: unknown) => (error = e) });
    expect(error).toBeInstanceOf(TypeError);
    expect(String(error)).toMatch(/folders/);
    group.destroy();
  });

  it('refuses to mix impersonated and own-mailbox members in one group', async () => {
    const h = await harness();
    h.join(mailboxOf(0));
    let error: unknown;
    h.group.signals({}).subscribe({ error: (e: unknown) => (error = e) });
    expect(error).toBeInstanceOf(TypeError);
    expect(String(error)).toMatch(/every member gives a mailbox/);
  });
});
