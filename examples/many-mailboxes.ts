/**
 * Watching many mailboxes through few connections with `StreamingGroup`: 450 room mailboxes on 3
 * GetStreamingEvents connections (200 subscriptions each at most), against EwsSimulator so it runs
 * anywhere. Halfway through, 50 more rooms join while mail is arriving, and one room leaves: no
 * other room misses an event.
 *
 * Run it from a checkout (tsx is a dev dependency of this repo):
 *
 *   npx tsx examples/many-mailboxes.ts
 *
 * Against a real server, give `url`, `auth` (a service account with the ApplicationImpersonation
 * role) and an `anchorMailbox` from the same mailbox server as the rooms.
 */
import assert from 'node:assert/strict';
import type { Subscription } from 'rxjs';
import { StreamingGroup } from '../lib/index.js';
import { EwsSimulator, sequenceOf } from '../lib/testing/index.js';

const room = (i: number): string => `room-${String(i).padStart(3, '0')}@contoso.com`;
const sim = await EwsSimulator.start({ timeScale: 0.001, keepAliveIntervalMs: 1_000 });

const group = new StreamingGroup({
  url: sim.url,
  auth: { type: 'basic', username: 'svc-rooms@contoso.com', password: 'anything' },
  anchorMailbox: room(0),
});

// What each room received (sequence numbers the simulator stamped on its events).
const received = new Map<string, number[]>();
const subscriptions = new Map<string, Subscription>();
function watch(mailbox: string): void {
  received.set(mailbox, []);
  const subscription = group.notifications({ mailbox, folders: ['inbox'] }).subscribe({
    next: (notification) => {
      for (const event of notification.events) received.get(mailbox)?.push(sequenceOf(event) ?? -1);
    },
    error: (error: unknown) => console.error(mailbox, 'failed:', error),
  });
  subscriptions.set(mailbox, subscription);
}

const pause = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
async function until(condition: () => boolean, what: string): Promise<void> {
  for (const deadline = Date.now() + 30_000; !condition(); await pause(20)) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
  }
}

const started = Date.now();
for (let i = 0; i < 450; i++) watch(room(i));
await until(() => group.stats().subscriptions === 450 && sim.openStreamingConnections === 3, '450 subscriptions on 3 connections');
console.log(`450 rooms subscribed in ${Date.now() - started} ms:`, group.stats());

// Mail arrives everywhere while 50 rooms join and one leaves.
const delivered = new Map<string, number[]>();
const deliver = (mailbox: string): void => {
  const list = delivered.get(mailbox) ?? [];
  list.push(sim.deliver(mailbox, { type: 'NewMail' }).seq);
  delivered.set(mailbox, list);
};
for (let i = 0; i < 450; i++) deliver(room(i));
for (let i = 450; i < 500; i++) watch(room(i));
subscriptions.get(room(7))?.unsubscribe();
delivered.delete(room(7));
for (let round = 0; round < 5; round++) {
  for (let i = 0; i < 450; i += 9) if (i !== 7) deliver(room(i));
  await pause(50);
}
await until(() => group.stats().subscriptions === 499, '499 subscriptions');
for (let i = 450; i < 500; i++) deliver(room(i));

await until(() => [...delivered].every(([mailbox, seqs]) => seqs.every((seq) => received.get(mailbox)?.includes(seq))), 'every event');
for (const [mailbox, seqs] of delivered) assert.deepEqual(received.get(mailbox), seqs, `${mailbox}: each event once, in order`);
const events = [...delivered.values()].reduce((sum, seqs) => sum + seqs.length, 0);
console.log(`${events} events to ${delivered.size} rooms, each received once and in order:`, group.stats());

await group.close(); // completes every member, unsubscribes each subscription, closes the connections
assert.equal(sim.subscriptions.length, 0);
await sim.close();
console.log('closed: no subscription left on the server');
