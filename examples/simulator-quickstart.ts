/**
 * Testing an app with EwsSimulator: a real EWS endpoint on 127.0.0.1, events on demand, and the
 * failures of production (a server that ends the stream, throttling) — then a check, from the
 * notifications alone, that every event arrived exactly once.
 *
 * Run it from a checkout (tsx is a dev dependency of this repo):
 *
 *   npx tsx examples/simulator-quickstart.ts
 *
 * In your own tests, import from 'ews-push-bridge' and 'ews-push-bridge/testing' instead of the
 * relative paths used here.
 */
import assert from 'node:assert/strict';
import { streamingNotifications, type PushNotification } from '../lib/index.js';
import { EwsSimulator, sequenceOf } from '../lib/testing/index.js';

// "The app": counts new mail per mailbox. Yours is whatever consumes the notifications.
const received: PushNotification[] = [];

// 1. Start a simulator. No options needed: any Basic credentials work and mailboxes appear on
//    first use. timeScale 0.001 makes the protocol's minutes last milliseconds.
const sim = await EwsSimulator.start({ timeScale: 0.001, keepAliveIntervalMs: 1_000 });

// 2. Point the app at it, exactly as at a real Exchange server.
const stop = new AbortController();
const subscription = streamingNotifications({
  url: sim.url,
  auth: { type: 'basic', username: 'alice@contoso.com', password: 'anything' },
  folders: ['inbox'],
  connectionTimeoutMinutes: 30, // = 1.8 s at this timeScale: the server ends the stream, the app reopens it
  signal: stop.signal,
}).subscribe({ next: (n) => received.push(n), error: (e: unknown) => console.error('source failed:', e) });

const pause = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
async function until(condition: () => boolean, what: string): Promise<void> {
  for (const deadline = Date.now() + 10_000; !condition(); await pause(10)) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
  }
}
await until(() => sim.openStreamingConnections === 1, 'the streaming connection');

// 3. Make things happen in the mailbox. deliver() returns each event with its per-mailbox `seq`.
const delivered = [sim.deliver('alice@contoso.com', { type: 'NewMail' })];

// 4. Production failures, on demand:
sim.forceClose(); //                                  the server ends the connection (ConnectionStatus Closed)…
delivered.push(sim.deliver('alice@contoso.com', { type: 'NewMail' })); // …while mail arrives
sim.inject({ type: 'server-busy', backOffMs: 200, operation: 'GetStreamingEvents' }); // and the reconnect is throttled once
await until(() => sim.openStreamingConnections === 1 && sim.requests.filter((r) => r.operation === 'GetStreamingEvents').length >= 3, 'the reconnect');
delivered.push(sim.deliver('alice@contoso.com', { type: 'Moved', from: 'inbox', to: 'deleteditems' }));

// 5. Check from the notifications alone: every delivered event arrived, once, in order.
const seqs = (): number[] => received.flatMap((n) => n.events.map(sequenceOf)).filter((s): s is number => s !== undefined);
await until(() => seqs().length >= delivered.length, 'every event');
assert.deepEqual(seqs(), delivered.map((d) => d.seq));

// What the app sent is on record too, for assertions about the wire.
const calls = sim.requests.map((r) => `${r.operation} → ${r.status}${r.fault ? ` (${r.fault})` : ''}`);
console.log(calls.join('\n'));
console.log(`received all ${delivered.length} events exactly once, across a server-side close and a throttled reconnect`);

stop.abort();
subscription.unsubscribe();
await pause(100); // let the source's Unsubscribe reach the simulator
await sim.close();
