/**
 * push-callback against EwsSimulator over real HTTP: an `'Unsubscribe'` answer removes the EWS
 * subscription (streaming and pull), and with the pull source a watermark is checkpointed only
 * after the handler answered OK — a notification that was never answered is delivered again by
 * the next run.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { pushCallback, type PushCallbackHandle } from '../adapters/push-callback.js';
import { MemoryCheckpointStore } from '../lib/checkpoint/memory-store.js';
import type { PushNotification, SubscriptionStatus } from '../lib/model.js';
import { hybridSignals } from '../lib/sources/hybrid.js';
import { pullSignals } from '../lib/sources/pull.js';
import { streamingSignals } from '../lib/sources/streaming.js';
import { EwsSimulator, sequenceOf } from '../lib/testing/index.js';
import { deferred } from './helpers/adapter-sources.js';
import { until } from './helpers/until.js';

const MAILBOX = 'alice@contoso.com';
const AUTH = { type: 'basic', username: MAILBOX, password: 'correct horse' } as const;

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function simulator(): Promise<EwsSimulator> {
  const sim = await EwsSimulator.start({ timeScale: 0.001, keepAliveIntervalMs: 200 });
  cleanups.push(() => sim.close());
  return sim;
}

function track(bridge: PushCallbackHandle): PushCallbackHandle {
  cleanups.push(() => bridge.close());
  return bridge;
}

const seqs = (n: PushNotification): number[] => n.events.map(sequenceOf).filter((s): s is number => s !== undefined);

describe('push-callback against EwsSimulator', () => {
  it('a streaming source with a checkpoint store hands recovered events to the legacy handler like any other', async () => {
    const sim = await simulator();
    const received: PushNotification[] = [];
    track(
      pushCallback(streamingSignals({ url: sim.url, auth: AUTH, checkpoint: new MemoryCheckpointStore(), folders: ['inbox'], eventTypes: ['NewMail'] }), (n) => {
        received.push(n);
        return 'OK';
      }),
    );
    await until(() => sim.subscriptions.some((s) => s.connected), 'a connected streaming subscription');
    // Dropped by the server: only SyncFolderItems finds them.
    const lost = [1, 2, 3].map(() => sim.deliver(MAILBOX, { type: 'NewMail' }).seq);
    sim.inject({ type: 'missed-events' });
    await until(() => lost.every((seq) => received.some((n) => seqs(n).includes(seq))), 'the recovered events');
    const recovered = received.flatMap((n) => n.events).filter((e) => e.type !== 'Status' && e.recovered);
    expect(recovered.map(sequenceOf)).toEqual(lost);
  });

  it("an 'Unsubscribe' answer ends the streaming source and the EWS subscription", async () => {
    const sim = await simulator();
    const received: number[] = [];
    const bridge = track(
      pushCallback(streamingSignals({ url: sim.url, auth: AUTH }), (n) => {
        received.push(...seqs(n));
        return received.length > 0 ? 'Unsubscribe' : 'OK';
      }),
    );
    await until(() => sim.subscriptions.some((s) => s.connected), 'a connected streaming subscription');
    const subscriptionId = sim.subscriptions[0]!.id;
    const delivered = sim.deliver(MAILBOX, { type: 'NewMail' });
    await expect(bridge.done).resolves.toEqual({ reason: 'unsubscribed', subscriptionId });
    expect(received).toEqual([delivered.seq]);
    await until(() => sim.requests.some((r) => r.operation === 'Unsubscribe'), 'EWS Unsubscribe');
    const unsubscribe = sim.requests.find((r) => r.operation === 'Unsubscribe');
    expect(unsubscribe?.request).toMatchObject({ operation: 'Unsubscribe', subscriptionId });
    await until(() => sim.subscriptions.length === 0 && sim.openStreamingConnections === 0, 'subscription removed');
  });

  it("an 'Unsubscribe' answer ends the pull source and the EWS subscription", async () => {
    const sim = await simulator();
    const bridge = track(
      pushCallback(pullSignals({ url: sim.url, auth: AUTH, pollIntervalMs: 20 }), (n): SubscriptionStatus => (seqs(n).length > 0 ? 'Unsubscribe' : 'OK')),
    );
    await until(() => sim.subscriptions.length === 1, 'a pull subscription');
    const subscriptionId = sim.subscriptions[0]!.id;
    sim.deliver(MAILBOX, { type: 'Created' });
    await expect(bridge.done).resolves.toEqual({ reason: 'unsubscribed', subscriptionId });
    await until(() => sim.requests.some((r) => r.operation === 'Unsubscribe'), 'EWS Unsubscribe');
    await until(() => sim.subscriptions.length === 0, 'subscription removed');
  });

  it('works over the hybrid source too: every event once, in order, checkpointed after OK', async () => {
    const sim = await simulator();
    const store = new MemoryCheckpointStore();
    const received: number[] = [];
    const bridge = track(
      pushCallback(hybridSignals({ url: sim.url, auth: AUTH, checkpoint: store, checkpointKey: 'h' }), (n) => {
        received.push(...seqs(n));
        return 'OK';
      }),
    );
    await until(() => sim.subscriptions.some((s) => s.kind === 'streaming' && s.connected) && sim.subscriptions.some((s) => s.kind === 'pull'), 'doorbell and pull subscription');
    const delivered = Array.from({ length: 12 }, (_, i) => sim.deliver(MAILBOX, { type: i % 2 ? 'Created' : 'NewMail' }));
    await until(() => received.length >= delivered.length, 'every event');
    expect(received).toEqual(delivered.map((d) => d.seq));
    await until(async () => (await store.get('h'))?.watermark === delivered.at(-1)!.watermark, 'checkpoint at the last event');
    await bridge.close();
  });

  it('with the pull source, checkpoints only after OK; an unanswered notification comes again in the next run', async () => {
    const sim = await simulator();
    const store = new MemoryCheckpointStore();
    const checkpoint = async (): Promise<string | undefined> => (await store.get('crm'))?.watermark;
    const source = () => pullSignals({ url: sim.url, auth: AUTH, pollIntervalMs: 20, checkpoint: store, checkpointKey: 'crm' });

    // Run 1: the first event is answered after a while, the second never (the listener is down).
    const gate = deferred<SubscriptionStatus>();
    const run1: number[] = [];
    const bridge1 = track(
      pushCallback(
        source(),
        (n) => {
          const s = seqs(n);
          run1.push(...s);
          if (s.includes(1)) return gate.promise;
          if (s.length > 0) throw new Error('listener down');
          return 'OK';
        },
        { onError: () => {} },
      ),
    );
    await until(() => sim.subscriptions.length === 1, 'a pull subscription');
    await until(async () => (await checkpoint()) !== undefined, 'the first (status) checkpoint');
    const first = sim.deliver(MAILBOX, { type: 'NewMail' });
    await until(() => run1.includes(first.seq), 'the first event handed over');
    // Handed over, not answered: the checkpoint must not have moved to its watermark.
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(await checkpoint()).not.toBe(first.watermark);
    gate.resolve('OK');
    await until(async () => (await checkpoint()) === first.watermark, 'checkpoint at the first event');

    const second = sim.deliver(MAILBOX, { type: 'NewMail' });
    await until(() => run1.includes(second.seq), 'the second event handed over');
    await new Promise((resolve) => setTimeout(resolve, 100));
    await bridge1.close();
    expect(await checkpoint()).toBe(first.watermark);

    // Run 2 resumes from the checkpoint: the unanswered event is delivered again, and acknowledged.
    const run2: number[] = [];
    const bridge2 = track(
      pushCallback(source(), (n) => {
        run2.push(...seqs(n));
        return 'OK';
      }),
    );
    await until(() => run2.includes(second.seq), 'the second event delivered again');
    expect(run2).toEqual([second.seq]);
    await until(async () => (await checkpoint()) === second.watermark, 'checkpoint at the second event');
    await bridge2.close();
  });
});
