/**
 * The pull source against EwsSimulator over real HTTP: push semantics, checkpoints, acknowledgement
 * and back-pressure, option validation and teardown. Faults: pull-faults.test.ts; restarts:
 * pull-restart.test.ts.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { firstValueFrom, lastValueFrom, take, toArray } from 'rxjs';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { checkpointKey } from '../lib/checkpoint/checkpoint-store.js';
import { FileCheckpointStore } from '../lib/checkpoint/file-store.js';
import { MemoryCheckpointStore } from '../lib/checkpoint/memory-store.js';
import { EwsCheckpointError } from '../lib/errors.js';
import type { Logger } from '../lib/logger.js';
import type { PushNotification } from '../lib/model.js';
import { deferAck, type AckFunction } from '../lib/sources/ack.js';
import { pullNotifications, type PullOptions } from '../lib/sources/pull.js';
import { EwsSimulator } from '../lib/testing/index.js';
import { AUTH, MAILBOX, seqsOf, sleep, startPullHarness, type PullHarness, type PullHarnessOptions } from './helpers/pull-harness.js';
import { until } from './helpers/until.js';

const harnesses: PullHarness[] = [];
async function harness(options?: PullHarnessOptions): Promise<PullHarness> {
  const h = await startPullHarness(options);
  harnesses.push(h);
  return h;
}
afterEach(async () => {
  await Promise.all(harnesses.splice(0).map((h) => h.stop()));
});

/** The key the source uses by default for {@link AUTH} watching the inbox for every event type. */
const DEFAULT_KEY = checkpointKey({
  mailbox: MAILBOX,
  folders: ['inbox'],
  eventTypes: ['NewMail', 'Created', 'Deleted', 'Modified', 'Moved', 'Copied', 'FreeBusyChanged'],
});

describe('pullNotifications against EwsSimulator', () => {
  it('emits GetEvents notifications as the wire has them, chained by watermark, and checkpoints each', async () => {
    const store = new MemoryCheckpointStore();
    const h = await harness({ source: { checkpoint: store } });
    await h.until(() => h.count('connected') === 1, 'connected');
    for (let i = 0; i < 12; i++) {
      h.deliver({ type: i % 3 === 0 ? 'Created' : 'NewMail' });
      if (i % 4 === 0) await sleep(30);
    }
    await h.allReceived();
    expect(h.received).toEqual(h.delivered.map((d) => d.seq));
    const subscriptionId = h.sim.subscriptions[0]?.id;
    const subscribe = h.requests('Subscribe')[0]?.request;
    expect(subscribe).toMatchObject({ kind: 'pull', timeoutMinutes: 30 });
    expect((subscribe as { watermark?: string } | undefined)?.watermark).toBeUndefined();
    // Each notification follows the last watermark of the one before (status ones included).
    let previous: string | undefined;
    for (const n of h.notifications) {
      expect(n.subscriptionId).toBe(subscriptionId);
      if (previous !== undefined) expect(n.previousWatermark).toBe(previous);
      previous = n.events.at(-1)?.watermark;
    }
    // Event watermarks are the server's own.
    const bySeq = new Map(h.delivered.map((d) => [d.seq, d.watermark]));
    for (const n of h.notifications) for (const e of n.events) if (e.type !== 'Status') expect(bySeq.values()).toContain(e.watermark);
    expect((await store.get(DEFAULT_KEY))?.watermark).toBe(h.notifications.at(-1)?.events.at(-1)?.watermark);
  });

  it('calls GetEvents again at once while MoreEvents is true, 50 events a page', async () => {
    const h = await harness({ deferStart: true });
    const start = h.deliver();
    h.delivered.shift(); // made before the start watermark: not expected
    for (let i = 0; i < 120; i++) h.deliver();
    // A poll interval far longer than the test: only MoreEvents can make it finish.
    h.start({ watermark: start.watermark, pollIntervalMs: 600_000, emitStatusEvents: false });
    await h.allReceived();
    expect(h.notifications.map((n) => [n.events.length, n.moreEvents])).toEqual([
      [50, true],
      [50, true],
      [20, false],
    ]);
    expect(h.received).toEqual(h.delivered.map((d) => d.seq));
    expect(h.notifications[0]?.previousWatermark).toBe(start.watermark);
  });

  it('checkpoints StatusEvent watermarks, and emits status notifications only when asked', async () => {
    const store = new MemoryCheckpointStore();
    const h = await harness({ source: { checkpoint: store, emitStatusEvents: false } });
    await h.until(() => h.count('keep-alive') >= 2, 'two idle polls');
    expect(h.notifications).toEqual([]);
    const status = h.sim.subscriptions[0]?.watermark;
    expect((await store.get(DEFAULT_KEY))?.watermark).toBe(status);

    const h2 = await harness({ source: { emitStatusEvents: true } });
    await h2.until(() => h2.notifications.length >= 2, 'two status notifications');
    for (const n of h2.notifications) {
      expect(n.events).toHaveLength(1);
      expect(n.events[0]).toMatchObject({ type: 'Status', watermark: expect.any(String) });
    }
  });

  it('resumes from the checkpoint after a restart: nothing made while down is lost, nothing handled is repeated', async () => {
    const store = new MemoryCheckpointStore();
    const h = await harness({ source: { checkpoint: store } });
    await h.until(() => h.count('connected') === 1, 'connected');
    for (let i = 0; i < 5; i++) h.deliver();
    await h.allReceived();
    h.subscription?.unsubscribe();
    await h.until(() => h.requests('Unsubscribe').length === 1, 'EWS Unsubscribe');
    const stored = (await store.get(DEFAULT_KEY))?.watermark;
    expect(stored).toBe(h.delivered.at(-1)?.watermark);

    for (let i = 0; i < 5; i++) h.deliver(); // while nobody listens
    const before = h.received.length;
    h.start({ checkpoint: store, watermark: 'ignored-when-the-store-has-one' });
    await h.allReceived();
    expect(h.received.slice(before)).toEqual(h.delivered.slice(5).map((d) => d.seq));
    expect((h.requests('Subscribe')[1]?.request as { watermark?: string } | undefined)?.watermark).toBe(stored);
  });

  it('starts from options.watermark when the store has nothing', async () => {
    const h = await harness({ deferStart: true });
    h.deliver();
    const from = h.deliver();
    h.deliver();
    h.deliver();
    h.start({ watermark: from.watermark, emitStatusEvents: false });
    await h.until(() => h.received.length === 2, 'two events');
    expect(h.received).toEqual([3, 4]);
  });

  it("back-pressure: with ackMode 'manual', no GetEvents follows until the consumer acks, and only then is it checkpointed", async () => {
    const store = new MemoryCheckpointStore();
    const acks: AckFunction[] = [];
    const h = await harness({ deferStart: true });
    const start = h.deliver();
    for (let i = 0; i < 120; i++) h.deliver();
    h.start({ watermark: start.watermark, checkpoint: store, ackMode: 'manual', emitStatusEvents: false }, (n) => {
      acks.push(deferAck(n));
    });
    await h.until(() => h.notifications.length === 1, 'first page');
    await sleep(200);
    expect(h.notifications).toHaveLength(1);
    expect(h.requests('GetEvents')).toHaveLength(1);
    expect((await store.get(DEFAULT_KEY))?.watermark).toBe(start.watermark);

    await acks[0]?.(); // resolves once the checkpoint is written
    expect((await store.get(DEFAULT_KEY))?.watermark).toBe(h.delivered[50]?.watermark);
    await h.until(() => h.notifications.length === 2, 'second page');
    expect(h.requests('GetEvents')).toHaveLength(2);
    await acks[0]?.(); // acking twice is harmless
    await acks[1]?.();
    await h.until(() => h.notifications.length === 3, 'third page');
    await acks[2]?.();
    expect((await store.get(DEFAULT_KEY))?.watermark).toBe(h.delivered.at(-1)?.watermark);
  });

  it('deferAck in auto mode: a slow async consumer holds exactly one notification, checkpointed only when done', async () => {
    const store = new MemoryCheckpointStore();
    let inFlight = 0;
    let maxInFlight = 0;
    const checkpointedWhenDone: (string | undefined)[] = [];
    const h = await harness({ deferStart: true });
    const start = h.deliver();
    h.delivered.shift();
    for (let i = 0; i < 150; i++) h.deliver();
    h.start({ watermark: start.watermark, checkpoint: store, emitStatusEvents: false }, (n) => {
      const ack = deferAck(n);
      inFlight++;
      maxInFlight = Math.max(maxInFlight, inFlight);
      void (async () => {
        await sleep(40);
        // Still the previous position: the source has not checkpointed this one behind our back.
        checkpointedWhenDone.push((await store.get(DEFAULT_KEY))?.watermark);
        inFlight--;
        await ack();
      })();
    });
    await h.allReceived();
    await h.until(() => inFlight === 0, 'last ack');
    expect(maxInFlight).toBe(1);
    expect(checkpointedWhenDone).toEqual([start.watermark, ...h.notifications.slice(0, -1).map((n) => n.events.at(-1)?.watermark)]);
  });

  it('deferAck is a no-op for notifications without an ack, and warns when called too late in auto mode', async () => {
    const plain: PushNotification = { subscriptionId: 's', moreEvents: false, events: [] };
    await expect(deferAck(plain)()).resolves.toBeUndefined();

    const warn = vi.fn();
    const logger: Logger = { debug() {}, info() {}, warn, error() {} };
    let late: Promise<void> | undefined;
    const h = await harness({ deferStart: true });
    h.start({ logger, emitStatusEvents: true }, (n) => {
      setTimeout(() => {
        late = deferAck(n)();
      }, 0);
    });
    await h.until(() => late !== undefined, 'a late deferAck');
    await late;
    expect(warn).toHaveBeenCalledWith(expect.stringContaining('deferAck() was called after'));
  });

  it('works with firstValueFrom/take: completes and unsubscribes cleanly', async () => {
    const sim = await EwsSimulator.start({ timeScale: 0.001 });
    try {
      const source = pullNotifications({ url: sim.url, auth: AUTH, pollIntervalMs: 20, emitStatusEvents: false });
      const got = firstValueFrom(source.pipe(take(2), toArray()));
      await sleep(100);
      for (let i = 0; i < 3; i++) sim.deliver(MAILBOX, { type: 'NewMail' });
      await sleep(100);
      sim.deliver(MAILBOX, { type: 'NewMail' });
      expect(seqsOf(await got)).toEqual([1, 2, 3, 4]);
      await until(() => sim.requests.filter((r) => r.operation === 'Unsubscribe').length === 1, 'one Unsubscribe');
    } finally {
      await sim.close();
    }
  });

  it('teardown: unsubscribing sends EWS Unsubscribe for its subscription and leaves no timer or socket', async () => {
    const before = process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
    const h = await harness({ source: { pollIntervalMs: 5_000 } });
    await h.until(() => h.count('connected') === 1, 'connected');
    const id = h.sim.subscriptions[0]?.id;
    h.subscription?.unsubscribe();
    await h.until(() => h.requests('Unsubscribe').length === 1, 'EWS Unsubscribe');
    expect(h.requests('Unsubscribe')[0]?.request).toMatchObject({ subscriptionId: id });
    await until(() => h.sim.subscriptions.length === 0, 'no subscription');
    await sleep(20);
    const after = process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
    expect(after).toBeLessThanOrEqual(before);
  });

  it('aborting options.signal completes the Observable and unsubscribes', async () => {
    const sim = await EwsSimulator.start({ timeScale: 0.001 });
    try {
      const controller = new AbortController();
      const done = lastValueFrom(pullNotifications({ url: sim.url, auth: AUTH, pollIntervalMs: 20, signal: controller.signal }).pipe(toArray()));
      await until(() => sim.requests.some((r) => r.operation === 'GetEvents'), 'a GetEvents');
      controller.abort();
      await expect(done).resolves.toBeInstanceOf(Array);
      await until(() => sim.requests.filter((r) => r.operation === 'Unsubscribe').length === 1, 'one Unsubscribe');
    } finally {
      await sim.close();
    }
  });

  it('keeps separate positions for separate accounts in one store', async () => {
    const store = new MemoryCheckpointStore();
    const sim = await EwsSimulator.start({ timeScale: 0.001 });
    try {
      const run = (user: string) =>
        firstValueFrom(pullNotifications({ url: sim.url, auth: { type: 'basic', username: user, password: 'p' }, checkpoint: store, pollIntervalMs: 20, emitStatusEvents: false }));
      const a = run('a@contoso.com');
      const b = run('b@contoso.com');
      await sleep(100);
      sim.deliver('a@contoso.com', { type: 'NewMail' });
      sim.deliver('b@contoso.com', { type: 'NewMail' });
      await Promise.all([a, b]);
      await until(() => store.keys().length === 2, 'both checkpoints');
    } finally {
      await sim.close();
    }
  });

  it('errors at once, before any request, on a corrupt checkpoint file', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ews-pull-'));
    try {
      const path = join(dir, 'cp.json');
      writeFileSync(path, '{"format":"ews-push-bridge/checkpoints","version":1,"checkpoints":{"k":');
      const h = await harness({ source: { checkpoint: new FileCheckpointStore({ path }) } });
      await h.until(() => h.error !== undefined, 'error').catch(() => undefined);
      expect(h.error).toBeInstanceOf(EwsCheckpointError);
      expect(h.sim.requests).toHaveLength(0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('pull option validation', () => {
  const base: PullOptions = { url: 'http://127.0.0.1:1/EWS/Exchange.asmx' };
  const cases: [Partial<PullOptions>, RegExp][] = [
    [{ subscriptionTimeoutMinutes: 0 }, /^subscriptionTimeoutMinutes must be 1–1440 \(got 0\)$/],
    [{ subscriptionTimeoutMinutes: 1441 }, /^subscriptionTimeoutMinutes must be 1–1440 \(got 1441\)$/],
    [{ subscriptionTimeoutMinutes: 1.5 }, /^subscriptionTimeoutMinutes must be 1–1440 \(got 1.5\)$/],
    [{ pollIntervalMs: 0 }, /^pollIntervalMs must be a positive number/],
    [{ pollIntervalMs: 60_000, subscriptionTimeoutMinutes: 1 }, /^pollIntervalMs must be shorter than subscriptionTimeoutMinutes/],
    [{ watermark: '' }, /^watermark must be a non-empty string \(got ""\)$/],
    [{ ackMode: 'later' as never }, /^ackMode must be "auto" or "manual" \(got "later"\)$/],
    [{ checkpoint: {} as never }, /^checkpoint must be a CheckpointStore \(with get and set methods\) \(got an object\)$/],
    [{ checkpointKey: '' }, /^checkpointKey must be a non-empty string \(got ""\)$/],
    [{ emitStatusEvents: 'yes' as never }, /^emitStatusEvents must be a boolean \(got "yes"\)$/],
    [{ dedupeWindow: -1 }, /^dedupeWindow must be 0–10000000 \(got -1\)$/],
    [{ folders: ['Inbox'] }, /folders\[0\] must be a lower-case distinguished folder name/],
    [{ url: 'ftp://x' }, /^url must be an absolute http or https URL \(got a string\)$/],
  ];
  for (const [bad, message] of cases) {
    it(`rejects ${JSON.stringify(bad)}`, async () => {
      await expect(firstValueFrom(pullNotifications({ ...base, ...bad }))).rejects.toThrow(message);
    });
  }

  it('defaults the poll to at most half the subscription timeout', async () => {
    // 1-minute subscriptions with the 10 s default poll are fine; nothing to reject.
    const sim = await EwsSimulator.start();
    try {
      const got = firstValueFrom(pullNotifications({ url: sim.url, auth: AUTH, subscriptionTimeoutMinutes: 1 }));
      await expect(got).resolves.toMatchObject({ events: [{ type: 'Status' }] });
    } finally {
      await sim.close();
    }
  });
});
