/**
 * Loss-free streaming (issue 15): a streaming source with a `checkpoint` store recovers every lossy
 * gap with SyncFolderItems — a cut mid-envelope, a lost subscription, ErrorMissedNotificationEvents —
 * catches up at start from stored sync states, and reports what it could not recover.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { MemoryCheckpointStore } from '../lib/checkpoint/memory-store.js';
import { EwsCheckpointError } from '../lib/errors.js';
import type { NotificationEvent } from '../lib/model.js';
import type { GapEvent, SourceSignal } from '../lib/sources/lifecycle.js';
import { sourceClosed } from '../lib/sources/source-closed.js';
import { deferAck } from '../lib/sources/ack.js';
import { streamingNotifications, streamingSignals, type StreamingOptions } from '../lib/sources/streaming.js';
import type { EwsSimulator} from '../lib/testing/index.js';
import { sequenceOf } from '../lib/testing/index.js';
import { AUTH, MAILBOX, startHarness, type Harness } from './helpers/streaming-harness.js';

let harness: Harness | undefined;
afterEach(async () => {
  await harness?.stop();
  harness = undefined;
});

const KEY = 'test-key';
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Every item event of a signal list, with whether it was recovered. */
function itemEvents(signals: readonly SourceSignal[]): { seq: number | undefined; recovered: boolean; event: NotificationEvent }[] {
  const out: { seq: number | undefined; recovered: boolean; event: NotificationEvent }[] = [];
  for (const s of signals) {
    if (s.type !== 'notification') continue;
    for (const event of s.notification.events) {
      if (event.type === 'Status') continue;
      out.push({ seq: sequenceOf(event), recovered: event.recovered === true, event });
    }
  }
  return out;
}

function gaps(signals: readonly SourceSignal[]): GapEvent[] {
  return signals.filter((s): s is GapEvent => s.type === 'gap');
}

function syncCalls(sim: EwsSimulator): number {
  return sim.requests.filter((r) => r.operation === 'SyncFolderItems').length;
}

/**
 * The acceptance property with recovery: every delivered event reached the consumer (live or
 * recovered), and an event arrived twice only when one copy was recovered.
 */
function expectNothingLost(h: Harness): { recovered: number; duplicates: number } {
  const events = itemEvents(h.signals);
  const bySeq = new Map<number, { live: number; recovered: number }>();
  for (const e of events) {
    if (e.seq === undefined) continue;
    const c = bySeq.get(e.seq) ?? { live: 0, recovered: 0 };
    if (e.recovered) c.recovered++;
    else c.live++;
    bySeq.set(e.seq, c);
  }
  let duplicates = 0;
  for (const { seq } of h.delivered) {
    const c = bySeq.get(seq);
    expect(c, `event ${seq} was lost`).toBeDefined();
    expect(c!.live, `event ${seq} delivered live more than once`).toBeLessThanOrEqual(1);
    if (c!.live + c!.recovered > 1) duplicates++;
  }
  for (const g of gaps(h.signals)) expect(g.eventsMayBeLost, `gap ${g.reason} left lossy: ${g.unrecoverable}`).toBe(false);
  return { recovered: events.filter((e) => e.recovered).length, duplicates };
}

async function startRecovering(store = new MemoryCheckpointStore(), stream: Partial<StreamingOptions> = {}): Promise<Harness> {
  harness = await startHarness({ stream: { checkpoint: store, checkpointKey: KEY, folders: ['inbox'], eventTypes: ['NewMail'], ...stream } });
  const h = harness;
  // The baseline is stored once the subscription is live.
  await h.until(() => syncCalls(h.sim) >= 1 && h.count('connected') >= 1, 'baseline and connection');
  return h;
}

describe('streaming gap recovery (checkpoint store given)', () => {
  it('a cut mid-envelope: what the dying connection carried is recovered, nothing lost', async () => {
    const store = new MemoryCheckpointStore();
    const h = await startRecovering(store);
    for (let i = 0; i < 5; i++) h.deliver();
    await h.allReceived();
    h.sim.inject({ type: 'cut-mid-envelope', operation: 'GetStreamingEvents' });
    for (let i = 0; i < 20; i++) h.deliver();
    await h.until(() => gaps(h.signals).length >= 1, 'the gap');
    for (let i = 0; i < 5; i++) h.deliver();
    await h.until(() => h.delivered.every(({ seq }) => itemEvents(h.signals).some((e) => e.seq === seq)), 'every event');
    const { recovered } = expectNothingLost(h);
    const [gap] = gaps(h.signals);
    expect(gap!.reason).toBe('connection-error');
    expect(gap!.recovered).toBe(recovered);
    expect(recovered).toBeGreaterThan(0);
    // One baseline call, one recovery call (20 changes fit one page).
    expect(gap!.recoveryRequests).toBe(1);
    expect((await store.get(KEY))?.syncStates?.['name:inbox']).toBeDefined();
    // The gap signal comes after the recovered events it counts.
    const gapAt = h.signals.indexOf(gap!);
    const lastRecovered = h.signals.findLastIndex((s) => s.type === 'notification' && s.notification.events.some((e) => e.type !== 'Status' && e.recovered));
    expect(lastRecovered).toBeLessThan(gapAt);
  });

  it('a lost subscription: events made before the new subscription existed are recovered', async () => {
    const h = await startRecovering();
    h.deliver();
    await h.allReceived();
    h.sim.inject({ type: 'forget-subscriptions' });
    // Made while no subscription exists: only SyncFolderItems can find them.
    for (let i = 0; i < 8; i++) h.deliver();
    await h.until(() => h.count('subscribed') >= 2 && gaps(h.signals).length >= 1, 'resubscribed and gap');
    h.deliver();
    await h.until(() => h.delivered.every(({ seq }) => itemEvents(h.signals).some((e) => e.seq === seq)), 'every event');
    const { recovered } = expectNothingLost(h);
    const [gap] = gaps(h.signals);
    expect(gap!.subscriptionKept).toBe(false);
    expect(recovered).toBeGreaterThanOrEqual(8);
    expect(gap!.recovered).toBe(recovered);
    // Recovered notifications name the subscription now in use.
    const rec = h.signals.find((s) => s.type === 'notification' && s.notification.events.some((e) => e.type !== 'Status' && e.recovered));
    expect(rec?.type === 'notification' && rec.notification.subscriptionId).toBe(gap!.subscriptionId);
  });

  it('ErrorMissedNotificationEvents: the dropped events are recovered, the subscription kept', async () => {
    const h = await startRecovering();
    h.deliver();
    await h.allReceived();
    for (let i = 0; i < 6; i++) h.deliver();
    h.sim.inject({ type: 'missed-events' });
    await h.until(() => gaps(h.signals).length >= 1, 'the gap');
    await h.until(() => h.delivered.every(({ seq }) => itemEvents(h.signals).some((e) => e.seq === seq)), 'every event');
    const { recovered } = expectNothingLost(h);
    const [gap] = gaps(h.signals);
    expect(gap!.reason).toBe('missed-events');
    expect(gap!.subscriptionKept).toBe(true);
    expect(recovered).toBe(6);
    expect(h.count('subscribed')).toBe(1);
  });

  it('maps changes to events: Create → Created/NewMail (messages only), Update → Modified, Delete → Deleted; known items are Modified', async () => {
    const store = new MemoryCheckpointStore();
    const h = await startRecovering(store, { eventTypes: ['NewMail', 'Created', 'Modified', 'Deleted'] });
    const kept = h.sim.deliver(MAILBOX, { type: 'NewMail' });
    const doomed = h.sim.deliver(MAILBOX, { type: 'NewMail' });
    await h.until(() => itemEvents(h.signals).filter((e) => !e.recovered).length >= 2, 'two live');
    h.sim.inject({ type: 'forget-subscriptions' });
    const fresh = h.sim.deliver(MAILBOX, { type: 'NewMail' });
    h.sim.deliver(MAILBOX, { type: 'Modified', itemId: kept.itemId!.id });
    h.sim.deliver(MAILBOX, { type: 'Deleted', itemId: doomed.itemId!.id });
    h.sim.deliver(MAILBOX, { type: 'Created', folder: 'calendar' }); // not watched
    await h.until(() => gaps(h.signals).length >= 1, 'the gap');
    const recovered = itemEvents(h.signals).filter((e) => e.recovered).map((e) => `${e.event.type}:${e.event.type !== 'Status' ? e.event.itemId?.id : ''}`);
    expect(recovered.sort()).toEqual(
      [`Created:${fresh.itemId!.id}`, `NewMail:${fresh.itemId!.id}`, `Modified:${kept.itemId!.id}`, `Deleted:${doomed.itemId!.id}`].sort(),
    );
    const one = itemEvents(h.signals).find((e) => e.recovered)!.event;
    expect(one.type !== 'Status' && one.parentFolderId.id).toBe(kept.parentFolderId!.id);
    expect(one.type !== 'Status' && one.timeStamp).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
  });

  it('an item streamed into a folder that was empty at its baseline, then deleted inside a gap, is recovered as Deleted', async () => {
    const h = await startRecovering(new MemoryCheckpointStore(), { eventTypes: ['NewMail', 'Deleted'] });
    const item = h.sim.deliver(MAILBOX, { type: 'NewMail' });
    await h.until(() => itemEvents(h.signals).length >= 1, 'the live NewMail');
    h.sim.inject({ type: 'forget-subscriptions' });
    h.sim.deliver(MAILBOX, { type: 'Deleted', itemId: item.itemId!.id });
    await h.until(() => gaps(h.signals).length >= 1, 'the gap');
    const recovered = itemEvents(h.signals).filter((e) => e.recovered).map((e) => e.event);
    expect(recovered).toMatchObject([{ type: 'Deleted', itemId: { id: item.itemId!.id }, parentFolderId: { id: item.parentFolderId!.id }, recovered: true }]);
    expect(gaps(h.signals)[0]).toMatchObject({ recovered: 1, eventsMayBeLost: false });
  });

  it('pages through MaxChangesReturned: 10 lost changes at 3 a page are 4 calls, all recovered', async () => {
    const h = await startRecovering(new MemoryCheckpointStore(), { recovery: { maxChangesReturned: 3 } });
    h.deliver();
    await h.allReceived();
    for (let i = 0; i < 10; i++) h.deliver();
    h.sim.inject({ type: 'missed-events' });
    await h.until(() => gaps(h.signals).length >= 1, 'the gap');
    expect(gaps(h.signals)[0]).toMatchObject({ recovered: 10, recoveryRequests: 4, eventsMayBeLost: false });
    expectNothingLost(h);
    const pages = h.signals.filter((s) => s.type === 'notification' && s.notification.events.some((e) => e.type !== 'Status' && e.recovered));
    expect(pages).toHaveLength(4);
  });

  it('a move between two watched folders inside a gap: Deleted in one, Created in the other, each with its folder', async () => {
    const h = await startRecovering(new MemoryCheckpointStore(), { folders: ['inbox', 'deleteditems'], eventTypes: ['Created', 'Deleted', 'Moved'] });
    const mail = h.sim.deliver(MAILBOX, { type: 'Created' });
    await h.until(() => itemEvents(h.signals).length >= 1, 'the live Created');
    h.sim.inject({ type: 'forget-subscriptions' });
    const moved = h.sim.deliver(MAILBOX, { type: 'Moved', itemId: mail.itemId!.id, from: 'inbox', to: 'deleteditems' });
    await h.until(() => gaps(h.signals).length >= 1, 'the gap');
    const recovered = itemEvents(h.signals).filter((e) => e.recovered).map((e) => e.event);
    expect(recovered).toHaveLength(2);
    expect(recovered).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ type: 'Deleted', itemId: { id: mail.itemId!.id }, parentFolderId: { id: mail.parentFolderId!.id } }),
        expect.objectContaining({ type: 'Created', itemId: { id: moved.itemId!.id, changeKey: moved.itemId!.changeKey }, parentFolderId: { id: moved.parentFolderId!.id } }),
      ]),
    );
  });

  it('catch-up at start: a restarted source emits what changed while it was down', async () => {
    const store = new MemoryCheckpointStore();
    const h = await startRecovering(store);
    h.deliver();
    await h.allReceived();
    await h.until(() => store.keys().length > 0, 'stored state');
    h.subscription.unsubscribe();
    await sourceClosed(h.subscription);
    // Down: three new mails.
    const down = [h.deliver(), h.deliver(), h.deliver()];
    const signals: SourceSignal[] = [];
    const sub = streamingSignals({ url: h.sim.url, auth: AUTH, checkpoint: store, checkpointKey: KEY, folders: ['inbox'], eventTypes: ['NewMail'], retry: { minDelayMs: 20, maxDelayMs: 200 } }).subscribe((s) => signals.push(s));
    try {
      await h.until(() => gaps(signals).length >= 1, 'the catch-up gap');
      const recovered = itemEvents(signals).filter((e) => e.recovered).map((e) => e.seq);
      // Everything made while down, plus what the first run streamed after its last stored state
      // (at-least-once: a restart repeats, never loses).
      expect(recovered).toEqual([1, ...down]);
      const [gap] = gaps(signals);
      expect(gap).toMatchObject({ reason: 'subscription-lost', subscriptionKept: false, eventsMayBeLost: false, recovered: 4 });
      // The first signal after subscribed-and-caught-up is not a second baseline: the state was reused.
      expect(syncCalls(h.sim)).toBe(2);
    } finally {
      sub.unsubscribe();
      await sourceClosed(sub);
    }
  });

  it('ErrorInvalidSyncStateData: a lossy gap, a new baseline stored', async () => {
    const store = new MemoryCheckpointStore();
    await store.set(KEY, { syncStates: { 'name:inbox': 'bm90IGEgc3RhdGU=' } });
    harness = await startHarness({ stream: { checkpoint: store, checkpointKey: KEY, folders: ['inbox'], eventTypes: ['NewMail'] } });
    const h = harness;
    await h.until(() => gaps(h.signals).length >= 1, 'the catch-up gap');
    const [gap] = gaps(h.signals);
    expect(gap).toMatchObject({ eventsMayBeLost: true, unrecoverable: 'invalid-sync-state', recovered: 0 });
    expect(gap!.recoveryError?.message).toMatch(/ErrorInvalidSyncStateData/);
    const state = (await store.get(KEY))?.syncStates?.['name:inbox'];
    expect(state).toBeDefined();
    expect(state).not.toBe('bm90IGEgc3RhdGU=');
    // Later gaps recover from the new baseline.
    h.sim.inject({ type: 'missed-events' });
    h.deliver();
    h.sim.inject({ type: 'missed-events' });
    await h.until(() => gaps(h.signals).length >= 2, 'second gap');
    expect(gaps(h.signals)[1]).toMatchObject({ eventsMayBeLost: false });
  });

  it('a state the server stops accepting mid-run: that gap is lossy (invalid-sync-state), the next is recovered from the new baseline', async () => {
    const h = await startRecovering();
    h.sim.inject({ type: 'invalid-sync-state', operation: 'SyncFolderItems' });
    h.deliver();
    h.sim.inject({ type: 'missed-events' });
    await h.until(() => gaps(h.signals).length >= 1, 'first gap');
    expect(gaps(h.signals)[0]).toMatchObject({ eventsMayBeLost: true, unrecoverable: 'invalid-sync-state' });
    const second = h.deliver();
    h.sim.inject({ type: 'missed-events' });
    await h.until(() => gaps(h.signals).length >= 2, 'second gap');
    expect(gaps(h.signals)[1]).toMatchObject({ eventsMayBeLost: false, recovered: 1 });
    expect(itemEvents(h.signals).filter((e) => e.recovered).map((e) => e.seq)).toEqual([second]);
  });

  it('SyncFolderItems answering ErrorServerBusy and 503: waits as told, no hot loop', async () => {
    const h = await startRecovering(new MemoryCheckpointStore(), { retry: { minDelayMs: 50, maxDelayMs: 400, minConnectionLifetimeMs: 0, jitter: false } });
    const before = syncCalls(h.sim);
    h.sim.inject({ type: 'server-busy', backOffMs: 300, operation: 'SyncFolderItems', times: 2 });
    h.sim.inject({ type: 'http-503', operation: 'SyncFolderItems', times: 1 });
    const started = Date.now();
    h.deliver();
    h.sim.inject({ type: 'missed-events' });
    await h.until(() => gaps(h.signals).length >= 1, 'the gap');
    const took = Date.now() - started;
    expectNothingLost(h);
    // Three refusals, then one success: four calls, and at least the two server waits.
    expect(syncCalls(h.sim) - before).toBe(4);
    expect(gaps(h.signals)[0]!.recoveryRequests).toBe(4);
    expect(took).toBeGreaterThanOrEqual(600);
    // Nothing more afterwards.
    await sleep(300);
    expect(syncCalls(h.sim) - before).toBe(4);
  });

  it('stopping the source during a recovery cancels it: no request after the stop', async () => {
    const h = await startRecovering();
    // A server wait longer than the test's timeout: a close that waited it out would never finish.
    h.sim.inject({ type: 'server-busy', backOffMs: 120_000, operation: 'SyncFolderItems', times: 5 });
    h.deliver();
    h.sim.inject({ type: 'missed-events' });
    const before = syncCalls(h.sim);
    await h.until(() => syncCalls(h.sim) > before, 'a recovery call');
    h.subscription.unsubscribe();
    await sourceClosed(h.subscription);
    const after = syncCalls(h.sim);
    await sleep(300);
    expect(syncCalls(h.sim)).toBe(after);
    expect(gaps(h.signals)).toHaveLength(0);
  });

  it('re-baselines during healthy periods: the delivered-set stays bounded, nothing emitted', async () => {
    const h = await startRecovering(new MemoryCheckpointStore(), { recovery: { rebaselineEvents: 10 } });
    for (let round = 0; round < 5; round++) {
      for (let i = 0; i < 10; i++) h.deliver();
      await h.allReceived();
      await sleep(20);
    }
    await h.until(() => syncCalls(h.sim) >= 4, 're-baselines');
    expect(itemEvents(h.signals).filter((e) => e.recovered)).toHaveLength(0);
    // After the re-baselines, a gap still recovers exactly what it lost.
    for (let i = 0; i < 3; i++) h.deliver();
    h.sim.inject({ type: 'missed-events' });
    await h.until(() => gaps(h.signals).length >= 1, 'the gap');
    await h.until(() => h.delivered.every(({ seq }) => itemEvents(h.signals).some((e) => e.seq === seq)), 'every event');
    expectNothingLost(h);
  });

  it('without a store a lossy gap says why it stays lossy; subscribeToAllFolders is a documented limit', async () => {
    harness = await startHarness({ stream: { folders: ['inbox'] } });
    const h = harness;
    await h.until(() => h.count('connected') >= 1, 'connected');
    h.sim.inject({ type: 'missed-events' });
    await h.until(() => gaps(h.signals).length >= 1, 'the gap');
    expect(gaps(h.signals)[0]).toMatchObject({ eventsMayBeLost: true, unrecoverable: 'no-store' });
    expect(syncCalls(h.sim)).toBe(0);
    await h.stop();
    harness = await startHarness({ stream: { subscribeToAllFolders: true, checkpoint: new MemoryCheckpointStore() } });
    const all = harness;
    await all.until(() => all.count('connected') >= 1, 'connected');
    all.sim.inject({ type: 'missed-events' });
    await all.until(() => gaps(all.signals).length >= 1, 'the gap');
    expect(gaps(all.signals)[0]).toMatchObject({ eventsMayBeLost: true, unrecoverable: 'all-folders' });
    expect(syncCalls(all.sim)).toBe(0);
  });

  it('a store that cannot be read errors the source with EwsCheckpointError before it subscribes', async () => {
    const broken = { get: () => Promise.reject(new Error('disk on fire')), set: () => Promise.resolve(), delete: () => Promise.resolve() };
    harness = await startHarness({ stream: { checkpoint: broken, folders: ['inbox'] } });
    const h = harness;
    await h.until(() => h.error !== undefined || h.completed, 'the error').catch(() => undefined);
    expect(h.error).toBeInstanceOf(EwsCheckpointError);
    expect((h.error as EwsCheckpointError).code).toBe('EWS_CHECKPOINT_ERROR');
    expect(h.sim.requests.filter((r) => r.operation === 'Subscribe')).toHaveLength(0);
  });

  it('a consumer that defers its ack holds back the sync-state write until it is done (a crash redelivers, never loses)', async () => {
    const store = new MemoryCheckpointStore();
    const h = await startRecovering(store, { recovery: { rebaselineEvents: 1 } });
    await h.until(() => store.keys().length > 0, 'baseline stored');
    h.subscription.unsubscribe();
    await sourceClosed(h.subscription);
    // A consumer that takes over the ack of the first live notification, as an adapter posting it on would.
    let ack: (() => Promise<void>) | undefined;
    const state = async (): Promise<string | undefined> => (await store.get(KEY))?.syncStates?.['name:inbox'];
    const sub = streamingNotifications({ url: h.sim.url, auth: AUTH, checkpoint: store, checkpointKey: KEY, folders: ['inbox'], eventTypes: ['NewMail'], recovery: { rebaselineEvents: 1 } }).subscribe((n) => {
      if (ack === undefined && n.events.some((e) => e.type !== 'Status' && !e.recovered)) ack = deferAck(n);
    });
    try {
      await h.until(() => h.sim.subscriptions.some((x) => x.connected), 'second source connected');
      await sleep(100); // its catch-up stored its state
      const held = await state();
      const calls = syncCalls(h.sim);
      h.sim.deliver(MAILBOX, { type: 'NewMail' });
      await h.until(() => ack !== undefined && syncCalls(h.sim) > calls, 'the live notification and the re-baseline after it');
      await sleep(100);
      expect(await state()).toBe(held);
      await ack!();
      await sleep(50);
      expect(await state()).not.toBe(held);
    } finally {
      sub.unsubscribe();
      await sourceClosed(sub);
    }
  });

  it('validates its options', () => {
    const errorOf = (options: Partial<StreamingOptions>): unknown => {
      let error: unknown;
      streamingSignals({ url: 'http://127.0.0.1:1/EWS/Exchange.asmx', ...options }).subscribe({ error: (e: unknown) => (error = e) });
      return error;
    };
    expect(errorOf({ checkpoint: {} as never })).toBeInstanceOf(TypeError);
    expect(errorOf({ checkpoint: new MemoryCheckpointStore(), checkpointKey: '' })).toBeInstanceOf(TypeError);
    expect(errorOf({ recoverGaps: 'yes' as never })).toBeInstanceOf(TypeError);
    expect(errorOf({ recovery: { maxChangesReturned: 513 } })).toBeInstanceOf(RangeError);
    expect(errorOf({ recovery: { rebaselineEvents: 0 } })).toBeInstanceOf(RangeError);
  });
});
