/**
 * Teardown while a Subscribe is still on the wire: the server may create the subscription after
 * the consumer has gone, and nobody else will ever remove it (streaming subscriptions linger,
 * pull ones count against EWSMaxSubscriptions until their timeout). The source waits for the
 * answer and unsubscribes what it created.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { Observable } from 'rxjs';
import type { PushNotification } from '../lib/model.js';
import { pullNotifications } from '../lib/sources/pull.js';
import { streamingNotifications } from '../lib/sources/streaming.js';
import { EwsSimulator } from '../lib/testing/index.js';

const sims: EwsSimulator[] = [];
afterEach(async () => {
  await Promise.all(sims.splice(0).map((s) => s.close()));
});

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function until(condition: () => boolean, what: string, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

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
