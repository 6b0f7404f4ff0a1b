/**
 * Teardown while a Subscribe is still on the wire: the server may create the subscription after
 * the consumer has gone, and nobody else will ever remove it (streaming subscriptions linger,
 * pull ones count against EWSMaxSubscriptions until their timeout). The source waits for the
 * answer and unsubscribes what it created.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { Observable, Subscription } from 'rxjs';
import { deferAck } from '../lib/sources/ack.js';
import { sourceClosed } from '../lib/sources/source-closed.js';
import type { PushNotification } from '../lib/model.js';
import { pullNotifications } from '../lib/sources/pull.js';
import { streamingNotifications } from '../lib/sources/streaming.js';
import { EwsSimulator } from '../lib/testing/index.js';
import { until } from './helpers/until.js';

const sims: EwsSimulator[] = [];
afterEach(async () => {
  await Promise.all(sims.splice(0).map((s) => s.close()));
});


const auth = { type: 'basic', username: 'alice@contoso.com', password: 'pw' } as const;

describe.each<[string, (url: string) => Observable<PushNotification>]>([
  ['streaming', (url) => streamingNotifications({ url, auth })],
  ['pull', (url) => pullNotifications({ url, auth, pollIntervalMs: 50, subscriptionTimeoutMinutes: 5 })],
])('%s source torn down while its Subscribe is in flight', (_kind, source) => {
  it('waits for the answer, then removes the subscription the server created', async () => {
    const sim = await EwsSimulator.start({ timeScale: 0.001 });
    sims.push(sim);
    sim.inject({ type: 'silence', forMs: 300, operation: 'Subscribe' });
    const subscription = source(sim.url).subscribe({ error: () => undefined });
    await until(() => sim.requests.some((r) => r.operation === 'Subscribe'), 'the Subscribe to arrive');
    subscription.unsubscribe();
    // The server answers late and creates the subscription after the consumer left …
    await until(() => sim.requests.some((r) => r.operation === 'Unsubscribe'), 'the Unsubscribe');
    // … and it is removed again; no stream or poll was started for the departed consumer.
    await until(() => sim.subscriptions.length === 0, 'no subscription left');
    expect(sim.requests.map((r) => r.operation)).toEqual(['Subscribe', 'Unsubscribe']);
  });
});

/**
 * A consumer that acknowledges and leaves at once (the push adapters' close() does this: it waits
 * for the checkpoint of the last answered notification, then unsubscribes). The pull loop finishes
 * that write without looking at the stop, then must not start its poll wait: with a long
 * `pollIntervalMs` the Unsubscribe would wait the whole interval (seen as a `forward` that did not
 * exit on SIGINT).
 */
describe('pull source torn down right after an acknowledgement', () => {
  const leaveAfter: Array<[string, (ack: () => Promise<void>, leave: () => void) => void]> = [
    ['at once after calling ack()', (ack, leave) => {
      void ack();
      leave();
    }],
    // The loop reaches its poll wait a few promise hops after the write; one of these lands the
    // stop in between (found by a `forward` that hung on SIGINT).
    ...Array.from({ length: 16 }, (_, hops): [string, (ack: () => Promise<void>, leave: () => void) => void] => [
      `${hops} promise hops after the checkpoint is written`,
      (ack, leave) => {
        let later = ack();
        for (let i = 0; i < hops; i++) later = later.then(() => undefined);
        void later.then(leave);
      },
    ]),
    ['on the next macrotask after the write', (ack, leave) => void ack().then(() => setImmediate(leave))],
  ];
  for (const [when, leaveWhen] of leaveAfter) {
    it(`unsubscribes without waiting for the poll interval: leaving ${when}`, async () => {
      const sim = await EwsSimulator.start();
      sims.push(sim);
      // Mail after a known watermark, so the very first GetEvents brings it: with a 10-minute
      // poll interval there is no second one.
      const from = sim.deliver('alice@contoso.com', { type: 'NewMail' }).watermark;
      sim.deliver('alice@contoso.com', { type: 'NewMail' });
      const source = pullNotifications({ url: sim.url, auth, pollIntervalMs: 600_000, ackMode: 'manual', watermark: from });
      let subscription: Subscription | undefined;
      const left = new Promise<void>((resolve) => {
        subscription = source.subscribe({
          next: (notification) => {
            if (!notification.events.some((e) => e.type === 'NewMail')) return;
            leaveWhen(deferAck(notification), () => {
              subscription?.unsubscribe();
              resolve();
            });
          },
          error: () => undefined,
        });
      });
      await left;
      await sourceClosed(subscription);
      expect(sim.requests.filter((r) => r.operation === 'Unsubscribe')).toHaveLength(1);
      expect(sim.subscriptions).toEqual([]);
    });
  }
});
